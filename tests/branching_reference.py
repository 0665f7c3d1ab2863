"""Independent reference for dynamic circuits: follow every measurement branch of a small circuit
(one statevector and one set of clbit values per branch, all branches stacked in arrays),
evaluating ``if_else`` conditions classically. Shares no code with the builders."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator


class Branches:
    def __init__(self, probs: np.ndarray, bits: np.ndarray, states: np.ndarray) -> None:
        self.probs, self.bits, self.states = probs, bits, states

    def select(self, mask: np.ndarray) -> "Branches":
        return Branches(self.probs[mask], self.bits[mask], self.states[mask])

    @staticmethod
    def concat(parts: list["Branches"]) -> "Branches":
        return Branches(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("probs", "bits", "states")))


def _apply(states: np.ndarray, matrix: np.ndarray, qubits: list[int], num_qubits: int) -> np.ndarray:
    count = states.shape[0]
    tensor = states.reshape((count,) + (2,) * num_qubits)
    axes = [1 + (num_qubits - 1 - q) for q in qubits]  # little-endian: qubit q is axis n-1-q
    k = len(qubits)
    gate = matrix.reshape((2,) * (2 * k))
    # Operator matrices are little-endian too: reverse the qubit order for the tensor indices
    moved = np.tensordot(gate, tensor, axes=(list(range(2 * k - 1, k - 1, -1)), axes))
    # np.tensordot put the gate's output axes first, in order (q_{k-1} ... q_0)
    out_axes = [axes[k - 1 - i] for i in range(k)]
    remaining = [a for a in range(1 + num_qubits) if a not in axes]
    order = np.empty(1 + num_qubits, dtype=int)
    for i, a in enumerate(out_axes):
        order[a] = i
    for j, a in enumerate(remaining):
        order[a] = k + j
    return np.transpose(moved, order).reshape(count, -1)


def run_branches(
    circuit: QuantumCircuit, initial: np.ndarray, prune: float = 1e-14, must_be_zero: np.ndarray | None = None
) -> Branches:
    """Every branch of ``circuit`` started in ``initial``; returns probabilities, bits and states.

    ``must_be_zero`` (a boolean mask over the clbits) drops a branch as soon as one of those bits
    reads 1: such shots are rejected anyway, and dropping them keeps the branch count small.
    """
    n = circuit.num_qubits
    qubit_index = {q: i for i, q in enumerate(circuit.qubits)}
    clbit_index = {c: i for i, c in enumerate(circuit.clbits)}
    state = np.asarray(initial, dtype=complex)[None, :]
    branches = Branches(np.ones(1), np.zeros((1, circuit.num_clbits), dtype=np.int8), state)
    cache: dict[tuple, np.ndarray] = {}

    def run(block: QuantumCircuit, qmap: dict, cmap: dict, br: Branches) -> Branches:
        idx = np.arange(2**n)
        for inst in block.data:
            if br.probs.size == 0:
                return br
            op = inst.operation
            qargs = [qmap[q] for q in inst.qubits]
            if op.name == "barrier":
                continue
            if op.name == "measure":
                q, c = qargs[0], cmap[inst.clbits[0]]
                parts = []
                for value in (0, 1):
                    if value == 1 and must_be_zero is not None and must_be_zero[c]:
                        continue
                    keep = ((idx >> q) & 1) == value
                    p = np.sum(np.abs(br.states[:, keep]) ** 2, axis=1)
                    alive = br.probs * p > prune
                    states = np.where(keep[None, :], br.states, 0)[alive] / np.sqrt(p[alive])[:, None]
                    bits = br.bits[alive].copy()
                    bits[:, c] = value
                    parts.append(Branches(br.probs[alive] * p[alive], bits, states))
                br = Branches.concat(parts)
            elif op.name == "reset":
                q = qargs[0]
                one = ((idx >> q) & 1) == 1
                out = np.where(one[None, :], 0, br.states)
                out[:, idx[one] ^ (1 << q)] += br.states[:, one]
                br = Branches(br.probs, br.bits, out / np.linalg.norm(out, axis=1, keepdims=True))
            elif op.name == "if_else":
                clbit, value = op.condition
                taken = br.bits[:, cmap[clbit]] == value
                body = op.blocks[0]
                inner_q = {b: qmap[q] for b, q in zip(body.qubits, inst.qubits)}
                inner_c = {b: cmap[c] for b, c in zip(body.clbits, inst.clbits)}
                br = Branches.concat([br.select(~taken), run(body, inner_q, inner_c, br.select(taken))])
            else:
                key = (op.name, tuple(np.asarray(p, dtype=complex).tobytes() for p in op.params), op.num_qubits)
                if key not in cache:
                    cache[key] = Operator(op).data
                br = Branches(br.probs, br.bits, _apply(br.states, cache[key], qargs, n))
        return br

    return run(circuit, qubit_index, clbit_index, branches)
