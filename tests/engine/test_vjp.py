"""ExactEngine.vjp: the gradient of any linear function of the step distributions, on every path
the engine resolves to, against central finite differences; a wrong upstream shape is named."""

from __future__ import annotations

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.spec import EngineSpec

CFG = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)


@pytest.mark.parametrize("spec", [EngineSpec("cpu"), EngineSpec("numpy"), EngineSpec("numpy", neuron_mode="amplify:3"),
                                  EngineSpec("cpu", neuron_mode="keep", unscored="measure")])
def test_vjp_equals_finite_differences(spec):
    params = CFG.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=1)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 4, (5, 4)), rng.integers(0, 4, (5, 4))
    upstream = rng.normal(size=(5, 4, 4))
    engine = ExactEngine(CFG, spec)
    grad, result = engine.vjp(params, inputs, targets, upstream)
    np.testing.assert_allclose(result.probabilities, engine.distributions(params, inputs, targets).probabilities,
                               atol=1e-12)

    def value(x):
        return float((upstream * engine.distributions(x, inputs, targets).probabilities).sum())

    h = 1e-6
    fd = np.array([(value(params + h * e) - value(params - h * e)) / (2 * h) for e in np.eye(params.size)])
    assert np.abs(grad).max() > 1e-2
    np.testing.assert_allclose(grad, fd, atol=1e-7, rtol=0)


def test_a_wrong_upstream_shape_says_what_is_expected():
    params = CFG.initial_parameters(seed=1)
    with pytest.raises(ValueError, match=r"grad_probabilities must have shape \(2, 3, 4\) \(sequences, steps, outcomes\), "
                                         r"got \(2, 3\)"):
        ExactEngine(CFG).vjp(params, np.zeros((2, 3), int), np.zeros((2, 3), int), np.zeros((2, 3)))
