"""Deferred measurement on Aer's density matrix: the joint probabilities equal the exact engine's,
the shift rule through them equals the engine's gradient, and the per-step shot draws are
unbiased; what cannot be deferred falls back to per-shot sampling."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit import ParameterVector

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.shift import joint_probabilities, parameter_shift_loss_and_gradient
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_deferred import DeferredJoints, deferred_circuit
from qrnn_qiskit.runners.aer_gradient import AerGradient

SIMPLE_BITS = QRNNConfig(input_width=1, workspace=2, stages=0, order=1, degree=1)
TWO_BITS = QRNNConfig(input_width=2, workspace=1, stages=1, order=2, degree=2)  # token order, order-2 flags


def _joints(cfg: QRNNConfig, seed: int | None = 1) -> DeferredJoints:
    runner = AerRunner(shots=1024, seed=seed)
    return DeferredJoints(cfg, lambda length: runner.circuit(cfg, length, ParameterVector("w", cfg.num_parameters)),
                          seed=seed)


def _problem(cfg: QRNNConfig, seed: int = 0, batch: int = 2, steps: int = 3):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 1, (3, cfg.num_parameters))
    inputs = rng.integers(0, cfg.num_outcomes, (batch, steps))
    targets = rng.integers(0, cfg.num_outcomes, (batch, steps))
    return vectors, inputs, targets


@pytest.mark.parametrize("cfg", [SIMPLE_BITS, TWO_BITS], ids=["simple-bits", "I2-order2"])
def test_exact_joints_equal_the_engine(cfg):
    vectors, inputs, targets = _problem(cfg)
    joint = _joints(cfg).exact(vectors, inputs, targets)
    engine = ExactEngine(cfg)
    reference = np.stack([joint_probabilities(engine.simulate(v, inputs, targets)) for v in vectors])
    assert joint.shape == reference.shape
    np.testing.assert_allclose(joint, reference, rtol=0, atol=1e-12)
    assert reference.max() > 1e-2  # figures large enough that a wrong bit order or target would show


def test_shift_rule_through_aer_joints_equals_the_engine_gradient():
    cfg = SIMPLE_BITS
    params = np.random.default_rng(4).normal(0, 0.5, cfg.num_parameters)
    inputs, targets, scored = np.array([[0, 1, 0], [1, 0, 1]]), np.array([[1, 0, 1], [0, 1, 0]]), np.ones(3, bool)
    engine = ExactEngine(cfg)
    joints = _joints(cfg)
    loss, gradient = parameter_shift_loss_and_gradient(
        engine, params, inputs, targets, scored, joint_fn=lambda vectors: joints.exact(vectors, inputs, targets))
    exact_loss, exact_gradient, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    assert loss == pytest.approx(exact_loss, abs=1e-10)
    np.testing.assert_allclose(gradient, exact_gradient, rtol=0, atol=1e-8)
    assert np.abs(exact_gradient).max() > 1e-2


def test_per_step_draws_are_unbiased_binomials():
    cfg, shots, draws = SIMPLE_BITS, 200, 400
    vectors, inputs, targets = _problem(cfg, seed=2)
    joints = _joints(cfg, seed=5)
    exact = joints.exact(vectors[:1], inputs, targets)
    draws_q = np.stack([joints.sampled(vectors[:1], inputs, targets, shots) for _ in range(draws)])
    np.testing.assert_allclose(draws_q * shots, np.round(draws_q * shots), atol=1e-9)  # counts of shots
    sigma = np.sqrt(exact * (1 - exact) / (shots * draws))
    assert np.all(np.abs(draws_q.mean(axis=0) - exact) <= 5 * sigma + 1e-12)
    spread = draws_q.std(axis=0)
    np.testing.assert_allclose(spread, np.sqrt(exact * (1 - exact) / shots), rtol=0.25, atol=1e-3)


def test_what_cannot_be_deferred_or_does_not_pay_samples_per_shot():
    # the density matrix pays when 4**(n+1) entries <= shots x 2**n amplitudes: 2**(n+2) <= shots
    assert AerGradient(SIMPLE_BITS, AerRunner(shots=64)).sampling == "per-step"  # 4 qubits
    assert AerGradient(SIMPLE_BITS, AerRunner(shots=32)).sampling == "per-shot"
    assert AerGradient(SIMPLE_BITS, AerRunner(shots=32), sampling="per-step").sampling == "per-step"  # if asked
    wide = QRNNConfig(input_width=3, workspace=5, stages=1, order=1, degree=1)  # 9 qubits
    assert AerGradient(wide, AerRunner(shots=1024)).sampling == "per-shot"
    assert AerGradient(wide, AerRunner(shots=2048)).sampling == "per-step"
    assert AerGradient(SIMPLE_BITS, AerRunner(shots=16, neuron_mode="rus:1")).sampling == "per-shot"
    assert AerGradient(SIMPLE_BITS, AerRunner(shots=16, noise="fake_manila")).sampling == "per-shot"
    with pytest.raises(ValueError, match="needs a noiseless postselected model .* neuron mode rus:1"):
        AerGradient(SIMPLE_BITS, AerRunner(shots=16, neuron_mode="rus:1"), sampling="per-step")
    with pytest.raises(ValueError, match="Unknown sampling 'exact'"):
        AerGradient(SIMPLE_BITS, AerRunner(shots=16), sampling="exact")
    with pytest.raises(QRNNError, match="control flow"):
        deferred_circuit(qrnn_sequence(SIMPLE_BITS, 1, neuron_mode="rus:1"), SIMPLE_BITS, 1)
