"""SamplerRunner over any BaseSamplerV2: a local backend sampler, Aer's, checked against the
independent statevector reference; register and shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.runners import SamplerRunner

CFG = QRNNConfig(input_width=2, workspace=2, stages=1, order=1, degree=2)
PARAMS = CFG.initial_parameters(bias_spread=0.6, weights_spread=0.6, unitaries_spread=0.6, seed=8)
INPUTS, TARGETS = np.array([[1, 3], [2, 0]]), np.array([[0, 1], [3, 2]])


def reference_joint(config, params, inputs, targets) -> np.ndarray:
    """Q[b, t, y] from the gate-level statevector reference alone: every neuron of steps <= t
    succeeds, io outcomes of steps < t equal the targets, step t reads y."""
    joint = np.zeros(inputs.shape + (config.num_outcomes,))
    for b in range(inputs.shape[0]):
        bits = config.token_to_bits(inputs[b]).reshape(-1).astype(float)
        circuit = qrnn_sequence(config, inputs.shape[1], weights=params, inputs=bits)
        run = run_postselected(circuit, list(targets[b]), config.input_width)
        alive = 1.0
        for t in range(inputs.shape[1]):
            joint[b, t] = alive * run.neuron_acceptance[t] * run.probabilities[t]
            alive *= run.neuron_acceptance[t] * run.outcome_probability[t]
    return joint


def _within_five_sigma(estimate, exact, shots):
    sigma = np.sqrt(exact * (1 - exact) / shots) + 1.0 / shots
    assert np.all(np.abs(estimate - exact) <= 5 * sigma), np.max(np.abs(estimate - exact) / sigma)


@pytest.mark.parametrize("synthesis", ["mc", "phase-polynomial"])
def test_any_backend_sampler_agrees_with_the_statevector_reference(synthesis):
    """qiskit's BackendSamplerV2 over a local simulator: a sampler this package knows nothing about."""
    from qiskit.primitives import BackendSamplerV2
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator

    backend = AerSimulator(seed_simulator=11)

    class LocalRunner(SamplerRunner):
        def transpile(self, circuit):
            return generate_preset_pass_manager(optimization_level=0, backend=backend).run(circuit)

    shots = 8000
    runner = LocalRunner(BackendSamplerV2(backend=backend), shots=shots, synthesis=synthesis)
    estimate = runner.sample(CFG, PARAMS, INPUTS).joint_probabilities(TARGETS, CFG.num_outcomes)
    _within_five_sigma(estimate, reference_joint(CFG, PARAMS, INPUTS, TARGETS), shots)


def test_aer_runner_agrees_with_the_statevector_reference():
    from qrnn_qiskit.runners.aer import AerRunner

    shots = 20000
    estimate = AerRunner(shots=shots, seed=5).sample(CFG, PARAMS, INPUTS).joint_probabilities(TARGETS, 4)
    _within_five_sigma(estimate, reference_joint(CFG, PARAMS, INPUTS, TARGETS), shots)


def test_a_result_without_qrnn_registers_is_refused():
    from qiskit import QuantumCircuit
    from qiskit_aer.primitives import SamplerV2

    circuit = QuantumCircuit(1)
    circuit.measure_all()
    result = SamplerV2().run([circuit], shots=4).result()
    runner = SamplerRunner(SamplerV2(), shots=4)
    with pytest.raises(QRNNError, match="no 'out' and 'flag' registers: it is not of a qrnn circuit"):
        runner.to_shots(CFG, result[0], 1)


def test_a_result_of_another_shape_is_refused():
    from qiskit_aer.primitives import SamplerV2

    runner = SamplerRunner(SamplerV2(), shots=4)
    circuit = runner.circuit(CFG, 2, PARAMS)
    result = runner.run([(circuit, runner.input_values(CFG, circuit, INPUTS))])
    with pytest.raises(QRNNError, match="holds 2 sequences of 2 steps, but 3 of 2 were expected"):
        runner.to_shots(CFG, result[0], 2, rows=3)


@pytest.mark.parametrize("shots", [0, -1, 1.5, True, "10"])
def test_bad_shots(shots):
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        SamplerRunner(None, shots=shots)


def test_bad_inputs():
    from qiskit_aer.primitives import SamplerV2

    runner = SamplerRunner(SamplerV2(), shots=4)
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, steps\)"):
        runner.sample(CFG, PARAMS, np.array([1, 2]))
