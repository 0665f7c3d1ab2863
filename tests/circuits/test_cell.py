"""QRNN cell and unrolled sequence: structure, counts, binding and inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.circuit import ParameterVector
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import input_parameters, qrnn_cell, qrnn_sequence, weight_parameters
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine


@pytest.mark.parametrize(
    ("input_width", "workspace", "stages", "order", "degree", "length"),
    [(1, 2, 1, 1, 1, 1), (2, 3, 2, 2, 2, 3), (3, 2, 0, 3, 1, 2), (2, 4, 1, 2, 3, 1)],
)
def test_operation_counts(input_width, workspace, stages, order, degree, length):
    cfg = QRNNConfig(input_width=input_width, workspace=workspace, stages=stages, order=order, degree=degree)
    circuit = qrnn_sequence(cfg, length, synthesis="mc")
    ops = circuit.count_ops()
    neurons = workspace + stages * workspace + input_width  # per step
    d = sum(math.comb(workspace + input_width - 1, j) for j in range(1, degree + 1))
    flags = 2**order - 1  # ancilla measurements per neuron
    # measurements: every ancilla measurement of every neuron plus the io lanes, every step
    assert ops["measure"] == length * (neurons * flags + input_width)
    assert ops["reset"] == ops["measure"]
    # RY: one bias rotation per parameter block (2^k per neuron), the work-stage rotations, and
    # the input write/unwrite pair per io lane
    assert ops["ry"] == length * (neurons * 2**order + stages * workspace + 2 * input_width)
    # controlled RY: D per block, plus the 2^k - 1 static CRY(+-pi) per neuron
    controlled = sum(v for k, v in ops.items() if k.startswith("c") and k.endswith("ry"))
    assert controlled == length * neurons * (2**order * d + flags)
    # X conjugation of every inverse parameter block: 2^(k-1) blocks x 2 per neuron
    assert ops["x"] == length * neurons * 2**order
    assert circuit.num_qubits == input_width + workspace + order
    assert [r.name for r in circuit.cregs] == ["out", "flag"]
    assert circuit.cregs[0].size == length * input_width
    assert circuit.cregs[1].size == length * neurons * flags
    assert circuit.num_parameters == cfg.num_parameters + length * input_width
    assert circuit.metadata["qrnn"]["length"] == length


def test_parameter_vectors_are_named_and_ordered():
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, degree=1)
    weights = weight_parameters(cfg)
    inputs = input_parameters(cfg, 3)
    circuit = qrnn_sequence(cfg, 3, weights=weights, inputs=inputs)
    assert set(circuit.parameters) == set(weights) | set(inputs)
    assert weights.name == "w" and inputs.name == "x" and len(inputs) == 6


def test_cell_is_one_step():
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, degree=1)
    assert qrnn_cell(cfg).count_ops() == qrnn_sequence(cfg, 1).count_ops()


def test_bound_symbolic_circuit_equals_numeric_build():
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
    rng = np.random.default_rng(5)
    params = rng.normal(0, 1, cfg.num_parameters)
    tokens = [2, 1, 3]
    targets = [1, 0, 2]
    bits = cfg.token_to_bits(tokens).reshape(-1).astype(float)
    weights, inputs = weight_parameters(cfg), input_parameters(cfg, 3)
    symbolic = qrnn_sequence(cfg, 3, weights=weights, inputs=inputs)
    bound = symbolic.assign_parameters({**dict(zip(weights, params)), **dict(zip(inputs, bits))})
    numeric = qrnn_sequence(cfg, 3, weights=params, inputs=bits)
    a = run_postselected(bound, targets, 2)
    b = run_postselected(numeric, targets, 2)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-12)
    np.testing.assert_allclose(a.neuron_acceptance, b.neuron_acceptance, atol=1e-12)


def test_input_write_is_exact_for_bits():
    # RY(pi * x) on |0> is |x> for x in {0, 1}; RY(-pi * x) undoes it, so the io lanes are |0>
    # again before the output stage whatever the input.
    cfg = QRNNConfig(input_width=2, workspace=1, stages=0, order=1, degree=1)
    params = np.zeros(cfg.num_parameters)
    for token in range(4):
        bits = cfg.token_to_bits([token]).reshape(-1).astype(float)
        run = run_postselected(qrnn_cell(cfg, weights=params, inputs=bits), [0], 2)
        # zero weights: every neuron applies the same pi/2-bias rotation, independent of the input
        np.testing.assert_allclose(run.probabilities[0], [0.25, 0.25, 0.25, 0.25], atol=1e-12)


@pytest.mark.parametrize("symbolic", [False, True])
def test_input_unwrite_with_io_weights(symbolic):
    """With non-zero weights on the io sources, the output neurons must read io lanes in |0>: a
    cell without the unwrite (or with a wrong one) gives other distributions than the engine."""
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=1, degree=2)
    params = cfg.initial_parameters(bias_spread=0.7, weights_spread=0.9, unitaries_spread=0.7, seed=11)
    engine = ExactEngine(cfg)
    for token in range(4):
        bits = cfg.token_to_bits([token]).reshape(-1).astype(float)
        if symbolic:  # the RY(pi x) / RY(-pi x) gates of a circuit with input parameters
            cell = qrnn_cell(cfg, weights=params)
            cell = cell.assign_parameters(dict(zip(input_parameters_of(cell), bits)))
        else:  # X gates for the bits that are 1
            cell = qrnn_cell(cfg, weights=params, inputs=bits)
        run = run_postselected(cell, [0], 2)
        want = engine.simulate(params, np.array([[token]]), np.array([[0]]))
        np.testing.assert_allclose(run.probabilities[0], want.probabilities[0, 0], atol=1e-10)
        np.testing.assert_allclose(run.neuron_acceptance[0], want.neuron_acceptance[0, 0], atol=1e-10)


def input_parameters_of(circuit):
    return sorted((p for p in circuit.parameters if p.vector.name == "x"), key=lambda p: p.index)


class TestInputs:
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, degree=1)

    @pytest.mark.parametrize("length", [0, -2, 1.5, True])
    def test_bad_length(self, length):
        with pytest.raises(ValueError, match="length must be a positive integer number of steps"):
            qrnn_sequence(self.cfg, length)

    def test_wrong_weight_count(self):
        with pytest.raises(ValueError, match=rf"Expected {self.cfg.num_parameters} weights .* got 3"):
            qrnn_sequence(self.cfg, 1, weights=[0.1, 0.2, 0.3])

    def test_wrong_input_count(self):
        with pytest.raises(ValueError, match=r"Expected 4 inputs \(2 steps x 2 io lanes\), got 3"):
            qrnn_sequence(self.cfg, 2, inputs=ParameterVector("x", 3))

    def test_inputs_must_be_bits(self):
        with pytest.raises(ValueError, match=r"Input bits must be 0 or 1, got \[2.0\]"):
            qrnn_sequence(self.cfg, 1, inputs=[0, 2])

    def test_config_type(self):
        with pytest.raises(TypeError, match="config must be a QRNNConfig"):
            qrnn_sequence({"input_width": 2}, 1)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("neuron_mode", ["postselect", "rus"])
def test_ucgate_synthesis_is_the_same_circuit(order, neuron_mode):
    from branching_reference import run_branches

    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=order, degree=2)
    params = np.random.default_rng(order).normal(0, 1, cfg.num_parameters)
    bits = cfg.token_to_bits([2, 1]).reshape(-1).astype(float)
    mc = qrnn_sequence(cfg, 2, weights=params, inputs=bits, neuron_mode=neuron_mode)
    mux = qrnn_sequence(cfg, 2, weights=params, inputs=bits, neuron_mode=neuron_mode, synthesis="ucgate")
    # every parameter block (1 + D rotations) becomes one uniformly controlled RY
    assert "ccry" not in mux.count_ops() and mux.count_ops()["multiplexer"] > 0
    if neuron_mode == "postselect":
        assert mux.count_ops()["multiplexer"] == 2 * cfg.num_neurons * 2**order
        a, b = run_postselected(mc, [1, 3], 2), run_postselected(mux, [1, 3], 2)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-10)
        np.testing.assert_allclose(b.neuron_acceptance, a.neuron_acceptance, atol=1e-10)
    else:
        from qrnn_qiskit.core.modes import rus_acceptance_mask

        # live branches multiply across neurons, so compare on a two-neuron, one-step cell
        small = QRNNConfig(input_width=1, workspace=1, stages=0, order=order, degree=1)
        weights = np.random.default_rng(order).normal(0, 1, small.num_parameters)
        a_circ = qrnn_sequence(small, 1, weights=weights, inputs=[1.0], neuron_mode="rus")
        b_circ = qrnn_sequence(small, 1, weights=weights, inputs=[1.0], neuron_mode="rus", synthesis="ucgate")
        must = np.concatenate([[False], np.tile(rus_acceptance_mask(order, 1), small.num_neurons)])
        state = np.zeros(2**a_circ.num_qubits, dtype=complex)
        state[0] = 1
        a, b = run_branches(a_circ, state, must_be_zero=must), run_branches(b_circ, state, must_be_zero=must)
        oa, ob = np.lexsort(a.bits.T), np.lexsort(b.bits.T)
        np.testing.assert_array_equal(a.bits[oa], b.bits[ob])
        np.testing.assert_allclose(a.probs[oa], b.probs[ob], atol=1e-10)


def test_ucgate_needs_numbers():
    cfg = QRNNConfig(input_width=1, workspace=2, stages=0, degree=1)
    with pytest.raises(ValueError, match="ucgate synthesis .* needs numeric weights"):
        qrnn_sequence(cfg, 1, synthesis="ucgate")
    with pytest.raises(ValueError, match="diagonal synthesis .* needs numeric weights"):
        qrnn_sequence(cfg, 1, synthesis="diagonal")
    with pytest.raises(ValueError, match="Unknown block synthesis 'gray'"):
        qrnn_sequence(cfg, 1, weights=np.zeros(cfg.num_parameters), synthesis="gray")


@pytest.mark.parametrize(("neuron_mode", "synthesis"), [("rus:2", "mc"), ("postselect", "multiplexer")])
def test_cell_forwards_every_option_of_the_sequence(neuron_mode, synthesis):
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
    cell = qrnn_cell(cfg, neuron_mode=neuron_mode, synthesis=synthesis, insert_barriers=True, name="c")
    sequence = qrnn_sequence(cfg, 1, neuron_mode=neuron_mode, synthesis=synthesis, insert_barriers=True, name="c")
    assert cell.metadata == sequence.metadata and cell.metadata["qrnn"]["neuron_mode"] == neuron_mode
    assert dict(cell.count_ops()) == dict(sequence.count_ops()) and cell.name == "c"
    assert ("if_else" in cell.count_ops()) == (neuron_mode != "postselect") and "barrier" in cell.count_ops()


def test_stages_are_typed():
    from qrnn_qiskit.core.config import Stage

    assert str(Stage("work", 1)) == "work1" and Stage("work", 1).is_work and not Stage("output").is_work
    with pytest.raises(ValueError, match="A work stage needs its index"):
        Stage("work")
    with pytest.raises(ValueError, match="A work stage needs its index and only a work stage has one"):
        Stage("input", 0)
    with pytest.raises(ValueError, match="Unknown stage kind 'hidden'"):
        Stage("hidden")
