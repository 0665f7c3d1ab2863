"""Repeat-until-success neurons: the correction restores the target, acceptance improves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from branching_reference import run_branches
from qiskit.quantum_info import Statevector

from qrnn_qiskit.circuits import qrnn_sequence, quantum_neuron
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode, rus_acceptance_mask, rus_flags_per_neuron

WEIGHTS = np.array([0.4, -0.7, 0.9, -0.25])  # phi_{0}, phi_{1}, phi_{01}, theta (2 sources, degree 2)


def _initial(num_qubits: int, sources: list[int], target_state: np.ndarray) -> np.ndarray:
    """Sources in a basis state, the target (qubit len(sources)) in ``target_state``, ancillas 0."""
    state = np.zeros(2**num_qubits, dtype=complex)
    base = sum(bit << q for q, bit in enumerate(sources))
    t = len(sources)
    state[base] = target_state[0]
    state[base | (1 << t)] = target_state[1]
    return state


def _target_state(branches, mask: np.ndarray, num_qubits: int, target: int):
    """Acceptance probability and the accepted target state (a mixture, so return its density)."""
    accepted = np.all(branches.bits[:, mask] == 0, axis=1)
    probs = branches.probs[accepted]
    rho = np.zeros((2, 2), dtype=complex)
    idx = np.arange(2**num_qubits)
    for p, state in zip(probs, branches.states[accepted]):
        amp = np.array([state[((idx >> target) & 1) == v].sum() for v in (0, 1)])
        # the rest of the register is a fixed basis state on accepted branches
        rho += p * np.outer(amp, amp.conj())
    return float(probs.sum()), rho / probs.sum()


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("retries", [1, 2])
@pytest.mark.parametrize("sources", [[0, 0], [1, 0], [1, 1]])
def test_accepted_target_is_the_ideal_rotation(order, retries, sources):
    circuit = quantum_neuron(2, order=order, degree=2, weights=WEIGHTS, neuron_mode=f"rus:{retries}")
    ideal = quantum_neuron(2, order=order, degree=2, weights=WEIGHTS)  # postselect mode
    mask = rus_acceptance_mask(order, retries)
    n = circuit.num_qubits
    x0, x1 = sources
    angle = math.pi / 2 + WEIGHTS[3] + WEIGHTS[0] * x0 + WEIGHTS[1] * x1 + WEIGHTS[2] * x0 * x1
    c, s, big_n = math.cos(angle / 2), math.sin(angle / 2), 2**order
    rotation = np.array([[c**big_n, -(s**big_n)], [s**big_n, c**big_n]])
    p_success = c ** (2 * big_n) + s ** (2 * big_n)
    for target_state in (np.array([1, 0]), np.array([0, 1]), np.array([1, 1]) / math.sqrt(2)):
        branches = run_branches(circuit, _initial(n, sources, target_state), must_be_zero=mask)
        accepted, rho = _target_state(branches, mask, n, 2)
        want = rotation @ target_state
        want = want / np.linalg.norm(want)
        np.testing.assert_allclose(rho, np.outer(want, want.conj()), atol=1e-10)
        ps = run_branches(ideal, _initial(n, sources, target_state), must_be_zero=np.ones(ideal.num_clbits, bool))
        ps_accepted = ps.probs.sum()
        assert ps_accepted == pytest.approx(p_success, abs=1e-10)
        assert accepted > ps_accepted - 1e-12
        if order == 1:
            # each attempt succeeds with p; a failure is undone exactly, so R retries give
            assert accepted == pytest.approx(1 - (1 - p_success) ** (retries + 1), abs=1e-10)


@pytest.mark.parametrize("dagger", [False, True])
def test_correction_undoes_a_failed_block(dagger):
    # Block P C P^dagger (order 1) on (a0, t); project a0 on 1; RY(+-pi/2) on t restores it.
    for eta in (0.3, 1.1, 2.0):
        p = np.array([[math.cos(eta), -math.sin(eta)], [math.sin(eta), math.cos(eta)]])  # RY(2 eta)
        y = np.array([[0, -1], [1, 0]]) if not dagger else np.array([[0, 1], [-1, 0]])
        # qubit 0 = a0, qubit 1 = t (little-endian kron: t (x) a0); CRY(+-pi) controlled on a0
        controlled = np.kron(np.eye(2), np.diag([1, 0])) + np.kron(y, np.diag([0, 1]))
        block = np.kron(np.eye(2), p.T) @ controlled @ np.kron(np.eye(2), p)
        for psi in (np.array([1, 0]), np.array([0.6, 0.8]), np.array([1, -1]) / math.sqrt(2)):
            state = block @ np.kron(psi, np.array([1, 0]))
            failed = state.reshape(2, 2)[:, 1]  # a0 = 1
            angle = -math.pi / 2 if dagger else math.pi / 2
            fix = np.array([[math.cos(angle / 2), -math.sin(angle / 2)], [math.sin(angle / 2), math.cos(angle / 2)]])
            restored = fix @ failed
            restored = restored / np.linalg.norm(restored)
            assert abs(abs(np.vdot(restored, psi)) - 1) < 1e-12


def test_cell_in_rus_mode_structure():
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
    circuit = qrnn_sequence(cfg, 2, neuron_mode=NeuronMode("rus", 2))
    per_neuron = rus_flags_per_neuron(2, 2)
    assert circuit.cregs[1].size == 2 * cfg.num_neurons * per_neuron
    # order 2: three retry chains per neuron (two inner first-pass blocks and the outer), R each
    assert circuit.count_ops()["if_else"] == 2 * cfg.num_neurons * 3 * 2
    for inst in circuit.data:
        if inst.operation.name == "if_else":
            body = inst.operation.blocks[0]
            assert "if_else" not in body.count_ops()  # IBM devices run no nested control flow
            assert len(inst.operation.blocks) == 1 or inst.operation.blocks[1] is None
    assert circuit.metadata["qrnn"]["neuron_mode"] == "rus:2"
    from qrnn_qiskit.circuits.report import logical_report

    report = logical_report(circuit)
    assert report["if_else_blocks"] == 2 * cfg.num_neurons * 3 * 2
    # every flag bit is written by exactly one measurement, plus the io measurements
    assert report["measurements"] == circuit.num_clbits


def test_mask_marks_last_attempts_and_body_measurements():
    # order 1, R=2: bits (first attempt, retry 1, retry 2): only the last decides
    np.testing.assert_array_equal(rus_acceptance_mask(1, 2), [False, False, True])
    # order 2, R=1: inner a0 chain (2 bits) twice, outer a1 first attempt, then the retry body:
    # two inner a0 measurements (not retried, must be 0) and the outer retry
    np.testing.assert_array_equal(rus_acceptance_mask(2, 1), [False, True, False, True, False, True, True, True])


def test_reference_simulator_agrees_with_statevector():
    # sanity check of the branching reference on a static circuit
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 2)
    qc.ry(0.3, 1)
    qc.cry(0.7, 1, 2)
    state = np.zeros(8, dtype=complex)
    state[0] = 1
    got = run_branches(qc, state).states[0]
    np.testing.assert_allclose(got, Statevector(qc).data, atol=1e-12)
