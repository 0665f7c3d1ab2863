"""Logical resource report of a built QRNN circuit."""

from __future__ import annotations

from collections import Counter

from qiskit import QuantumCircuit

__all__ = ["logical_report", "operation_counts"]


def logical_report(circuit: QuantumCircuit) -> dict:
    """Qubits, clbits, depth, operation counts and parameters of ``circuit``, before transpiling.

    Multi-controlled rotations are counted by their number of controls under
    ``controlled_rotations`` (``{"1": n1, "2": n2, ...}``). Operations inside ``if_else`` bodies
    (rus mode) are counted as if executed once, so the counts are the circuit's static size.
    """
    counts, controls = operation_counts(circuit)
    return {
        "qubits": circuit.num_qubits,
        "clbits": circuit.num_clbits,
        "depth": circuit.depth(),
        "operations": dict(sorted(counts.items())),
        "controlled_rotations": dict(sorted(controls.items(), key=lambda kv: int(kv[0]))),
        "measurements": counts.get("measure", 0),
        "resets": counts.get("reset", 0),
        "if_else_blocks": counts.get("if_else", 0),
        "parameters": circuit.num_parameters,
        "metadata": dict(circuit.metadata.get("qrnn", {})) if circuit.metadata else {},
    }


def operation_counts(circuit: QuantumCircuit) -> tuple[Counter, Counter]:
    """Operations by name (``if_else`` bodies counted once) and RY rotations by their number of controls."""
    counts = Counter()
    controls = Counter()

    def visit(circ: QuantumCircuit) -> None:
        for inst in circ.data:
            op = inst.operation
            counts[op.name] += 1
            if op.name == "if_else":
                for block in op.blocks:
                    if block is not None:
                        visit(block)
                continue
            num_ctrl = getattr(op, "num_ctrl_qubits", 0)
            if num_ctrl and op.name.endswith("ry"):
                controls[str(num_ctrl)] += 1

    visit(circuit)
    return counts, controls
