"""Gate-level quantum neuron: structure, counts and the activation law."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.circuit import ClassicalRegister, ParameterVector, QuantumCircuit, QuantumRegister
from qiskit.quantum_info import Operator, Statevector

from qrnn_qiskit.circuits import neuron_program, quantum_neuron


def _postselected_target_one(circuit: QuantumCircuit, source_bits: list[int]) -> tuple[float, float]:
    """P(target=1 | all flags 0) and P(all flags 0), with the sources prepared in ``source_bits``."""
    n = circuit.num_qubits
    prep = sum(bit << q for q, bit in enumerate(source_bits))
    data = np.zeros(2**n, dtype=complex)
    data[prep] = 1.0
    index = {q: i for i, q in enumerate(circuit.qubits)}
    accepted = 1.0
    idx = np.arange(2**n)
    for inst in circuit.data:
        qargs = [index[q] for q in inst.qubits]
        if inst.operation.name == "measure":
            keep = ((idx >> qargs[0]) & 1) == 0
            p = float(np.sum(np.abs(data[keep]) ** 2))
            accepted *= p
            data = np.where(keep, data, 0) / math.sqrt(p)
        elif inst.operation.name == "reset":
            continue  # the ancilla was just projected on 0
        else:
            data = Statevector(data).evolve(Operator(inst.operation), qargs).data
    target = len(source_bits)
    return float(np.sum(np.abs(data[((idx >> target) & 1) == 1]) ** 2)), accepted


class TestStructure:
    def test_inverse_block_is_exact_inverse(self):
        # X P X equals the reference's P^dagger (same gates reversed with negated angles)
        w = [0.3, -1.1, 0.7, 0.25]
        circuit = quantum_neuron(2, order=1, degree=2, weights=w)
        ops = [i for i in circuit.data if i.operation.name not in ("measure", "reset")]
        index = {q: k for k, q in enumerate(circuit.qubits)}
        block = QuantumCircuit(circuit.num_qubits)
        for inst in ops[:4]:  # P: bias RY and three controlled RY
            block.append(inst.operation, [index[q] for q in inst.qubits])
        inverse = QuantumCircuit(circuit.num_qubits)
        for inst in ops[5:11]:  # X P X
            inverse.append(inst.operation, [index[q] for q in inst.qubits])
        assert Operator(inverse).equiv(Operator(block).adjoint())

    def test_order_one_matches_hand_built(self):
        w = ParameterVector("w", 2)
        built = quantum_neuron(1, order=1, degree=1, weights=w)
        # P = RY(pi/2 + w1) . CRY(w0); P^dagger = X P X (all of P's gates are Y rotations of anc)
        #           ┌────────────┐┌──────┐       ┌───┐┌────────────┐┌──────┐┌───┐┌─┐
        # anc:      ┤Ry(π/2 + w1)├┤Ry(w0)├───■───┤ X ├┤Ry(π/2 + w1)├┤Ry(w0)├┤ X ├┤M├─|0>─
        #           └────────────┘└──┬───┘ ┌─┴─┐ └───┘└────────────┘└──┬───┘└───┘└╥┘
        # src:      ─────────────────■─────┼───┼───────────────────────■──────────╫─────
        # target:   ───────────────────────┤Ry(π)├─────────────────────────────────╫─────
        src, target, anc = QuantumRegister(1, "src"), QuantumRegister(1, "target"), QuantumRegister(1, "anc")
        flag = ClassicalRegister(1, "flag")
        expected = QuantumCircuit(src, target, anc, flag)
        expected.ry(w[1] + math.pi / 2, anc[0])
        expected.cry(w[0], src[0], anc[0])
        expected.cry(math.pi, anc[0], target[0])
        expected.x(anc[0])
        expected.ry(w[1] + math.pi / 2, anc[0])
        expected.cry(w[0], src[0], anc[0])
        expected.x(anc[0])
        expected.measure(anc[0], flag[0])
        expected.reset(anc[0])
        bound = {w[0]: 0.37, w[1]: -0.81}
        assert [i.operation.name for i in built.data] == [i.operation.name for i in expected.data]
        assert [[built.find_bit(q).index for q in i.qubits] for i in built.data] == [
            [expected.find_bit(q).index for q in i.qubits] for i in expected.data
        ]
        for got, want in zip(built.assign_parameters(bound).data, expected.assign_parameters(bound).data):
            np.testing.assert_allclose([float(p) for p in got.operation.params], [float(p) for p in want.operation.params])

    def test_order_two_program(self):
        # P; C0; P†; M0; C1; P; C0†; P†; M0; M1  (digest 1.3)
        kinds = [(op.kind, op.level) for op in neuron_program(2)]
        assert kinds == [
            ("P", 0), ("C", 0), ("Pdg", 0), ("M", 0), ("C", 1),
            ("P", 0), ("Cdg", 0), ("Pdg", 0), ("M", 0), ("M", 1),
        ]

    @pytest.mark.parametrize("order", [1, 2, 3, 4])
    @pytest.mark.parametrize(("num_sources", "degree"), [(1, 1), (3, 2), (4, 3)])
    def test_counts(self, order, num_sources, degree):
        circuit = quantum_neuron(num_sources, order=order, degree=degree)
        ops = circuit.count_ops()
        d = sum(math.comb(num_sources, j) for j in range(1, degree + 1))
        blocks = 2**order  # 2^k parameter blocks, each: one RY plus D controlled RY
        assert ops["measure"] == ops["reset"] == 2**order - 1
        static = sum(
            1
            for i in circuit.data
            if i.operation.name == "cry"
            and isinstance(i.operation.params[0], float)
            and abs(abs(i.operation.params[0]) - math.pi) < 1e-15
        )
        assert static == 2**order - 1
        assert ops.get("ry", 0) == blocks
        assert ops["x"] == blocks  # each of the 2^(k-1) inverse blocks is conjugated by two X
        assert sum(ops.values()) == blocks * (1 + d) + blocks + (2**order - 1) * 3
        assert circuit.num_parameters == d + 1
        assert circuit.num_qubits == num_sources + 1 + order


class TestActivation:
    @pytest.mark.parametrize("order", [1, 2, 3])
    @pytest.mark.parametrize("source_bits", [[0, 0], [1, 0], [0, 1], [1, 1]])
    def test_rotation_law(self, order, source_bits):
        # P(out=1) = s^(2N) / (s^(2N) + c^(2N)), N = 2^k, c, s of half the ancilla's RY angle;
        # the success probability is c^(2N) + s^(2N).
        weights = np.array([0.4, -0.7, 0.9, -0.25])  # phi_{0}, phi_{1}, phi_{01}, theta
        circuit = quantum_neuron(2, order=order, degree=2, weights=weights)
        x0, x1 = source_bits
        angle = math.pi / 2 + weights[3] + weights[0] * x0 + weights[1] * x1 + weights[2] * x0 * x1
        c, s, n = math.cos(angle / 2), math.sin(angle / 2), 2**order
        p_one, accepted = _postselected_target_one(circuit, source_bits)
        assert p_one == pytest.approx(s ** (2 * n) / (s ** (2 * n) + c ** (2 * n)), abs=1e-12)
        assert accepted == pytest.approx(c ** (2 * n) + s ** (2 * n), abs=1e-12)

    def test_bias_point_is_steepest(self):
        # At the fixed bias pi/2 and zero weights, eta = pi/4: the output is 1 with probability 1/2.
        circuit = quantum_neuron(1, order=2, degree=1, weights=[0.0, 0.0])
        assert _postselected_target_one(circuit, [1])[0] == pytest.approx(0.5, abs=1e-12)


class TestInputs:
    @pytest.mark.parametrize(
        ("args", "kwargs", "match"),
        [
            ((0,), {}, r"num_sources must be a positive integer, got 0"),
            ((2,), {"order": 0}, r"order must be a positive integer, got 0"),
            ((2,), {"degree": 3}, r"degree must be at most num_sources=2, got degree=3"),
            ((2,), {"weights": [0.1]}, r"Expected 4 weights \(3 subset weights and the bias\)"),
        ],
    )
    def test_bad_arguments(self, args, kwargs, match):
        with pytest.raises(ValueError, match=match):
            quantum_neuron(*args, **kwargs)
