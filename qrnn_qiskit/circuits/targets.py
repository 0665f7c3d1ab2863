"""Compilation targets and transpiled resource reports.

A target is ``generic`` (the basis ``{cx, rz, sx, x}``, all-to-all, no errors), a fake backend
of ``qiskit_ibm_runtime.fake_provider`` named as the backend calls itself (``fake_torino``,
``fake_sherbrooke``, ...), or a live ``ibm_*`` backend object passed in by the IBM runner.

Every step of an unrolled QRNN is the same circuit up to its input parameters, so a report for
``T`` steps transpiles **one** step (inputs symbolic) and scales: gate counts are exact
(``T`` times the step's), depths and durations are ``T`` times the step's (an upper bound: steps
share every qubit, so little overlap is lost), the success estimate is the step's to the power
``T``. ``transpile_report(..., whole=True)`` transpiles the whole circuit instead.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager

__all__ = ["GENERIC_BASIS", "resolve_target", "transpile_report", "fake_backend_names"]

GENERIC_BASIS = ("cx", "rz", "sx", "x")
_CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "box"}


@dataclass(frozen=True)
class Target:
    """A resolved compilation target: a name and, for devices, the backend."""

    name: str
    backend: object | None = None

    @property
    def is_device(self) -> bool:
        return self.backend is not None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def fake_backend_names() -> list[str]:
    """Names of the fake backends shipped with qiskit-ibm-runtime (``fake_torino``, ...)."""
    from qiskit_ibm_runtime import fake_provider

    names = []
    for attr in dir(fake_provider):
        if attr.startswith("Fake") and not attr.startswith("FakeProvider"):
            names.append(_snake(attr[:-2] if attr.endswith("V2") else attr))
    return sorted(set(names))


def resolve_target(target: str | object) -> Target:
    """``"generic"``, ``"fake_<name>"`` or a backend object.

    Raises:
        ValueError: for an unknown name (with the available ones), or ``ibm_*`` without a backend
            object (live backends come from the IBM runner, which handles credentials).
    """
    if not isinstance(target, str):
        return Target(getattr(target, "name", "backend"), target)
    if target == "generic":
        return Target("generic")
    if target.startswith("fake_"):
        from qiskit_ibm_runtime import fake_provider

        class_name = "Fake" + "".join(part.capitalize() for part in target[len("fake_") :].split("_"))
        cls = getattr(fake_provider, class_name + "V2", None) or getattr(fake_provider, class_name, None)
        if cls is None:
            names = fake_backend_names()
            raise ValueError(
                f"Unknown fake backend {target!r}; qiskit-ibm-runtime ships {len(names)}, e.g. "
                f"{', '.join(n for n in names if n in ('fake_torino', 'fake_sherbrooke', 'fake_brisbane', 'fake_kyiv')) or ', '.join(names[:4])}."
            )
        return Target(target, cls())
    if target.startswith("ibm_"):
        raise ValueError(
            f"{target!r} is a live IBM backend: reports for it need an IBM Quantum account "
            "(qrnn eval --backend ibm_* resolves credentials); offline, use a fake backend such as fake_torino."
        )
    raise ValueError(f"Unknown target {target!r}; expected 'generic', 'fake_<name>' (e.g. fake_torino) or 'ibm_<name>'.")


def _two_qubit_depth(circuit: QuantumCircuit) -> int:
    return circuit.depth(filter_function=lambda inst: inst.operation.num_qubits == 2 and inst.operation.name != "barrier")


def _success_estimate(circuit: QuantumCircuit, backend) -> float:
    """Product of ``1 - error`` over every gate, measurement and reset with a reported error."""
    target = backend.target
    index = {q: i for i, q in enumerate(circuit.qubits)}
    log_p = 0.0

    def visit(circ: QuantumCircuit, mapping: dict) -> None:
        nonlocal log_p
        for inst in circ.data:
            op = inst.operation
            if op.name in _CONTROL_FLOW:
                # count each block once: an optimistic-to-realistic middle for conditional retries
                for block in op.blocks:
                    visit(block, {b: mapping[q] for b, q in zip(block.qubits, inst.qubits)})
                continue
            if op.name in ("barrier", "delay") or op.name not in target.operation_names:
                continue
            qargs = tuple(mapping[q] for q in inst.qubits)
            props = target[op.name].get(qargs)
            if props is not None and props.error is not None:
                log_p += math.log1p(-min(props.error, 1 - 1e-15))

    visit(circuit, index)
    return math.exp(log_p)


def _duration(circuit: QuantumCircuit, backend) -> float:
    """Critical-path duration in seconds from the backend's instruction durations.

    ``if_else`` bodies count as executed (for rus circuits: every retry happens, an upper bound).
    Classical feed-forward latency is not modelled.
    """
    target = backend.target
    clock = {q: 0.0 for q in circuit.qubits}

    def visit(circ: QuantumCircuit, mapping: dict) -> None:
        for inst in circ.data:
            op = inst.operation
            qubits = [mapping[q] for q in inst.qubits]
            if op.name in _CONTROL_FLOW:
                body = op.blocks[0]
                start = max((clock[q] for q in qubits), default=0.0)
                for q in qubits:
                    clock[q] = start
                visit(body, {b: mapping[q] for b, q in zip(body.qubits, inst.qubits)})
                end = max(clock[q] for q in qubits)
                for q in qubits:
                    clock[q] = end
                continue
            length = 0.0
            if op.name in target.operation_names:
                props = target[op.name].get(tuple(index[q] for q in qubits))
                if props is not None and props.duration:
                    length = props.duration
            start = max((clock[q] for q in qubits), default=0.0)
            for q in qubits:
                clock[q] = start + length

    index = {q: i for i, q in enumerate(circuit.qubits)}
    visit(circuit, {q: q for q in circuit.qubits})
    return max(clock.values(), default=0.0)


def transpile_report(
    step_circuit: QuantumCircuit,
    target: str | object,
    *,
    length: int = 1,
    optimization_level: int = 1,
    seed: int | None = 7,
) -> dict:
    """Transpile one step (or a whole circuit with ``length=1``) and report device figures.

    Args:
        step_circuit: the circuit of one cell step (or anything to transpile as is).
        target: see :func:`resolve_target`.
        length: number of steps the figures are scaled to.
        optimization_level: preset pass manager level 0-3.
        seed: transpiler seed (layout and routing are randomised).

    Raises:
        ValueError: for a bad target or optimisation level, or a circuit with control flow on a
            backend that does not support it.
    """
    if optimization_level not in (0, 1, 2, 3):
        raise ValueError(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}.")
    resolved = resolve_target(target)
    flow = sorted({i.operation.name for i in step_circuit.data} & _CONTROL_FLOW)
    if resolved.is_device:
        backend = resolved.backend
        supported = set(backend.target.operation_names)
        missing = [name for name in flow if name not in supported]
        if missing:
            raise ValueError(
                f"{resolved.name} does not support {missing} (dynamic circuits); build with "
                "--neuron-mode postselect for this backend."
            )
        if step_circuit.num_qubits > backend.num_qubits:
            raise ValueError(
                f"The circuit needs {step_circuit.num_qubits} qubits but {resolved.name} has {backend.num_qubits}."
            )
        pm = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend, seed_transpiler=seed)
    else:
        pm = generate_preset_pass_manager(
            optimization_level=optimization_level, basis_gates=list(GENERIC_BASIS), seed_transpiler=seed
        )
    start = time.perf_counter()
    compiled = pm.run(step_circuit)
    seconds = time.perf_counter() - start
    ops = dict(compiled.count_ops())
    two_qubit = sum(
        1 for inst in compiled.data if inst.operation.num_qubits == 2 and inst.operation.name != "barrier"
    )
    report = {
        "target": resolved.name,
        "optimization_level": optimization_level,
        "steps_scaled": length,
        "transpile_seconds_per_step": round(seconds, 3),
        "two_qubit_gates": two_qubit * length,
        "two_qubit_gates_per_step": two_qubit,
        "depth": compiled.depth() * length,
        "two_qubit_depth": _two_qubit_depth(compiled) * length,
        "operations": {name: count * length for name, count in sorted(ops.items())},
    }
    if resolved.is_device:
        backend = resolved.backend
        layout = compiled.layout.initial_index_layout(filter_ancillas=True) if compiled.layout else None
        step_success = _success_estimate(compiled, backend)
        report.update(
            {
                "backend_qubits": backend.num_qubits,
                "layout": layout,
                "duration_seconds": _duration(compiled, backend) * length,
                "success_probability_estimate": step_success**length,
                "success_probability_estimate_per_step": step_success,
            }
        )
    return report
