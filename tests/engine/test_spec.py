"""The engine spec: one place that checks path, precision and neuron mode, and says which backend runs them."""

from __future__ import annotations

import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.engine import EngineSpec, ExactEngine


def test_amplified_neurons_on_the_cpu_path_run_on_numpy_and_say_why():
    spec = EngineSpec.parse("cpu", "float64", "amplify:3")
    assert spec.backend == "numpy" and spec.complex_amplitudes
    assert "complex amplitudes" in spec.note and "numpy path runs it" in str(spec)
    assert spec.to_dict() == {"engine": "cpu", "precision": "float64", "neuron_mode": "amplify:3"}
    engine = ExactEngine(QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1), spec)
    assert engine.engine == "numpy" and engine.spec is spec


def test_a_spec_passes_through_and_postselect_runs_where_asked():
    spec = EngineSpec("numpy", "float64", NeuronMode())
    assert EngineSpec.parse(spec) is spec and spec.backend == "numpy" and spec.note is None
    assert EngineSpec.parse("cpu", "float32").backend == "cpu"


@pytest.mark.parametrize("arguments, message", [
    (("tpu",), "engine must be one of cpu, numpy, gpu, got 'tpu'"),
    (("cpu", "float16"), "precision must be one of float64, float32, got 'float16'"),
    (("numpy", "float32"), "precision 'float32' needs engine 'cpu' or 'gpu'"),
    (("cpu", "float32", "amplify:3"), "amplify:3 runs on the numpy path in float64"),
    (("gpu", "float64", "amplify:3"), "got engine 'gpu', whose kernels are real"),
])
def test_every_combination_no_backend_computes_is_refused_in_one_place(arguments, message):
    with pytest.raises(ValueError, match=message):
        EngineSpec.parse(*arguments)
