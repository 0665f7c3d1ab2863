"""Independent reference: evolve a Qiskit Statevector through a built QRNN circuit gate by gate,
projecting every mid-circuit measurement on its wanted outcome (ancilla flags on 0, io outputs on
the targets) and renormalising. Shares no code with the exact engine; it only reads the circuit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator, Statevector


@dataclass
class ReferenceRun:
    probabilities: np.ndarray  # (T, 2**I) token order, io marginal before each step's measurement
    outcome_probability: np.ndarray  # (T,)
    neuron_acceptance: np.ndarray  # (T,)
    final_state: Statevector


def _project(data: np.ndarray, qubit: int, value: int) -> tuple[np.ndarray, float]:
    idx = np.arange(data.shape[0])
    keep = ((idx >> qubit) & 1) == value
    prob = float(np.sum(np.abs(data[keep]) ** 2))
    out = np.where(keep, data, 0.0)
    if prob > 0:
        out = out / np.sqrt(prob)
    return out, prob


def run_postselected(circuit: QuantumCircuit, targets: list[int], input_width: int) -> ReferenceRun:
    """Simulate ``circuit`` (weights and inputs bound) with postselection on ``targets`` (tokens)."""
    if circuit.parameters:
        raise ValueError("bind every parameter first")
    out_reg = circuit.cregs[[r.name for r in circuit.cregs].index("out")]
    out_bits = {bit: k for k, bit in enumerate(out_reg)}
    flag_reg = circuit.cregs[[r.name for r in circuit.cregs].index("flag")]
    flag_bits = {bit: k for k, bit in enumerate(flag_reg)}
    flags_per_step = len(flag_reg) // len(targets)
    qubit_index = {q: i for i, q in enumerate(circuit.qubits)}
    state = Statevector.from_label("0" * circuit.num_qubits)
    data = state.data.copy()
    steps = len(targets)
    probs = np.zeros((steps, 2**input_width))
    taken = np.zeros(steps)
    acceptance = np.ones(steps)
    matrices: dict[tuple, Operator] = {}
    for inst in circuit.data:
        op = inst.operation
        qargs = [qubit_index[q] for q in inst.qubits]
        name = op.name
        if name == "barrier":
            continue
        if name == "measure":
            clbit = inst.clbits[0]
            q = qargs[0]
            if clbit in flag_bits:
                data, p = _project(data, q, 0)
                acceptance[flag_bits[clbit] // flags_per_step] *= p
            else:
                k = out_bits[clbit]
                step, lane = divmod(k, input_width)
                if lane == 0:
                    sv = Statevector(data)
                    marginal = sv.probabilities(list(range(input_width)))  # little-endian io index
                    for io_index, value in enumerate(marginal):
                        token = int(format(io_index, f"0{input_width}b")[::-1], 2)
                        probs[step, token] = value
                bit = (targets[step] >> (input_width - 1 - lane)) & 1
                data, p = _project(data, q, bit)
                if lane == 0:
                    taken[step] = 1.0
                taken[step] *= p
            continue
        if name == "reset":
            q = qargs[0]
            idx = np.arange(data.shape[0])
            p1 = float(np.sum(np.abs(data[((idx >> q) & 1) == 1]) ** 2))
            if p1 > 1 - 1e-12:
                data = Statevector(data).evolve(Operator([[0, 1], [1, 0]]), [q]).data
            elif p1 > 1e-12:
                raise AssertionError("reset of a qubit that is not in a basis state")
            continue
        # Key by content: Qiskit hands out fresh Python objects for Rust-backed gates, so ids recycle.
        key = (name, op.num_qubits, tuple(np.asarray(v, dtype=complex).tobytes() for v in op.params))
        if key not in matrices:
            matrices[key] = Operator(op)
        data = Statevector(data).evolve(matrices[key], qargs).data
    return ReferenceRun(probs, taken, acceptance, Statevector(data))
