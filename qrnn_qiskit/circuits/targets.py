"""Compilation targets and transpiled resource reports.

A target is ``generic`` (the basis ``{cx, rz, sx, x}``, all-to-all, no errors), a fake backend
of ``qiskit_ibm_runtime.fake_provider`` named as the backend calls itself (``fake_torino``,
``fake_sherbrooke``, ...), or a live ``ibm_*`` backend object passed in by the IBM runner.

Every step of an unrolled QRNN is the same circuit up to its input parameters, so a report for
``T`` steps transpiles **one** step (inputs symbolic) and scales: gate counts are exact
(``T`` times the step's), depths and durations are ``T`` times the step's (an upper bound: steps
share every qubit, so little overlap is lost), the success estimate is the step's to the power
``T``.

Layout on devices: a neuron couples every source lane with its first ancilla, a star that a
heavy-hex or square lattice cannot hold, so routing adds SWAPs. ``layout="auto"`` (the default)
transpiles with the preset pass manager's own layout and with compact layouts (the ancillas on a
well-connected, low-error qubit and the lanes on its breadth-first neighbourhood) and keeps the
one with the fewest 2-qubit gates, so it is never worse than the default. The report gives the
SWAP overhead: 2-qubit gates on the device minus those of the same circuit transpiled to the
device's basis with all-to-all connectivity.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from qiskit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import PassManager, generate_preset_pass_manager
from qiskit.transpiler import Target as QiskitTarget

__all__ = ["GENERIC_BASIS", "LAYOUTS", "resolve_target", "transpile_report", "two_qubit_gates", "fake_backend_names",
           "compact_layouts"]

LAYOUTS = ("auto", "default", "compact")

GENERIC_BASIS = ("cx", "rz", "sx", "x")
_CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "box"}


@dataclass(frozen=True)
class ResolvedTarget:
    """A resolved compilation target: a name and, for devices, the backend (named so as not to be
    mistaken for :class:`qiskit.transpiler.Target`, which :func:`resolve_target` also accepts)."""

    name: str
    backend: object | None = None

    @property
    def is_device(self) -> bool:
        return self.backend is not None


class TargetBackend(BackendV2):
    """A :class:`qiskit.transpiler.Target` as a backend that compiles and reports (no ``run``)."""

    def __init__(self, target: QiskitTarget) -> None:
        super().__init__(name=getattr(target, "description", None) or "target")
        self._target = target

    @property
    def target(self) -> QiskitTarget:
        return self._target

    @property
    def max_circuits(self):
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input, **options):
        raise NotImplementedError("A Target only compiles; run the circuits on a backend (aer, fake_<name>, ibm_<name>).")


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


def resolve_target(target: str | object) -> ResolvedTarget:
    """``"generic"``, ``"fake_<name>"``, a backend object (``BackendV2``) or a
    :class:`qiskit.transpiler.Target` (wrapped as a backend that only compiles).

    Raises:
        ValueError: for an unknown name (with the available ones), or ``ibm_*`` without a backend
            object (live backends come from the IBM runner, which handles credentials).
    """
    if isinstance(target, QiskitTarget):
        return ResolvedTarget(getattr(target, "description", None) or "target", TargetBackend(target))
    if not isinstance(target, str):
        return ResolvedTarget(getattr(target, "name", "backend"), target)
    if target == "generic":
        return ResolvedTarget("generic")
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
        return ResolvedTarget(target, cls())
    if target.startswith("ibm_"):
        raise ValueError(
            f"{target!r} is a live IBM backend: pass its backend object (qiskit_ibm_runtime); on the command "
            "line, qrnn build --target ibm_* resolves credentials (token and instance, QISKIT_IBM_TOKEN, or a "
            "saved account); offline, use a fake backend such as fake_torino."
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


def _two_qubit_count(circuit: QuantumCircuit) -> int:
    """2-qubit gates, counting each ``if_else`` body once."""
    total = 0
    for inst in circuit.data:
        op = inst.operation
        if op.name in _CONTROL_FLOW:
            total += sum(_two_qubit_count(block) for block in op.blocks)
        elif op.num_qubits == 2 and op.name != "barrier":
            total += 1
    return total


def _undirected(backend) -> dict[int, set[int]]:
    neighbours: dict[int, set[int]] = {q: set() for q in range(backend.num_qubits)}
    for a, b in backend.coupling_map.get_edges():
        neighbours[a].add(b)
        neighbours[b].add(a)
    return neighbours


def _two_qubit_errors(backend) -> dict[frozenset, float]:
    target = backend.target
    errors: dict[frozenset, float] = {}
    for name in target.operation_names:
        op = target.operation_from_name(name) if hasattr(target, "operation_from_name") else None
        if op is None or getattr(op, "num_qubits", 0) != 2:
            continue
        for qargs, props in target[name].items():
            if qargs is not None and props is not None and props.error is not None:
                key = frozenset(qargs)
                errors[key] = min(errors.get(key, 1.0), props.error)
    return errors


def compact_layouts(backend, circuit: QuantumCircuit, count: int = 6) -> list[list[int]]:
    """Initial layouts that keep the circuit's qubits in one compact patch of the device.

    Each candidate puts the ancillas (the ``anc`` register, the hubs of every neuron) on a centre
    qubit and its nearest neighbours and the lanes on the rest of a breadth-first ball around it
    (higher-degree qubits first). Centres are ranked by the mean 2-qubit error inside their ball;
    the ``count`` best are returned, as lists of physical qubits in the circuit's qubit order.
    """
    neighbours = _undirected(backend)
    errors = _two_qubit_errors(backend)
    size = circuit.num_qubits
    hubs = [q for reg in circuit.qregs if reg.name == "anc" for q in reg]
    hub_set = set(hubs)
    order = hubs + [q for q in circuit.qubits if q not in hub_set]
    ranked = []
    for centre in range(backend.num_qubits):
        ball, seen, frontier = [centre], {centre}, [centre]
        while frontier and len(ball) < size:
            following = []
            for u in frontier:
                for v in sorted(neighbours[u], key=lambda v: (-len(neighbours[v]), v)):
                    if v not in seen and len(ball) < size:
                        seen.add(v)
                        ball.append(v)
                        following.append(v)
            frontier = following
        if len(ball) < size:
            continue
        inside = [e for pair, e in errors.items() if pair <= seen]
        score = sum(inside) / len(inside) if inside else 0.0
        ranked.append((score, -len(neighbours[centre]), centre, ball))
    ranked.sort()
    layouts = []
    for _, _, _, ball in ranked[:count]:
        physical = dict(zip(order, ball))
        layouts.append([physical[q] for q in circuit.qubits])
    return layouts


def transpile_report(
    step_circuit: QuantumCircuit, target: str | object, *, length: int = 1, optimization_level: int = 1,
    seed: int | None = 7, layout: str = "auto", keep_circuit: bool = False, pass_manager: PassManager | None = None,
) -> dict:
    """Transpile one step (or a whole circuit with ``length=1``) and report device figures.

    Args:
        step_circuit: the circuit of one cell step (or anything to transpile as is).
        target: see :func:`resolve_target`.
        length: number of steps the figures are scaled to.
        optimization_level: preset pass manager level 0-3.
        seed: transpiler seed (layout and routing are randomised).
        layout: devices only: ``"default"`` (the pass manager's), ``"compact"`` (the best of
            :func:`compact_layouts`) or ``"auto"`` (the better of both).
        keep_circuit: add the transpiled circuit to the report as ``"circuit"``.
        pass_manager: compile with this (a ``PassManager`` or anything with ``run``) instead of the
            preset pass managers and layouts; a device target still gives the device figures.

    Raises:
        ValueError: for a bad target, optimisation level or layout, or a circuit with control flow
            on a backend that does not support it.
    """
    if optimization_level not in (0, 1, 2, 3):
        raise ValueError(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}.")
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}.")
    resolved = resolve_target(target)
    candidates = [("custom", pass_manager)] if pass_manager is not None else \
        _candidate_pass_managers(resolved, step_circuit, optimization_level, seed, layout)
    start = time.perf_counter()
    results = []
    for label, pm in candidates:
        compiled_candidate = pm.run(step_circuit)
        results.append((_two_qubit_count(compiled_candidate), len(results), label, compiled_candidate))
    seconds = time.perf_counter() - start
    default_count = next((count for count, _, label, _ in results if label == "default"), None)
    two_qubit, _, chosen, compiled = min(results, key=lambda r: r[:2])
    ops = dict(compiled.count_ops())
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
        report.update(_device_figures(resolved.backend, step_circuit, compiled, length, optimization_level, seed))
        report.update({"layout_strategy": chosen, "layout_candidates": len(results),
                       "two_qubit_gates_per_step_default_layout": default_count})
    if keep_circuit:
        report["circuit"] = compiled
    return report


def two_qubit_gates(step_circuit: QuantumCircuit, target: str | object, *, optimization_level: int = 1,
                    seed: int | None = 7) -> tuple[str, int]:
    """``(target name, 2-qubit gates)`` of ``step_circuit`` transpiled with the preset pass manager
    (default layout on devices): the one figure of :func:`transpile_report` that the synthesis
    comparison needs, without its depths and device figures (on the 99-step MNIST model the
    depths took a second of the comparison's five)."""
    resolved = resolve_target(target)
    (_, pm), = _candidate_pass_managers(resolved, step_circuit, optimization_level, seed, "default")
    return resolved.name, _two_qubit_count(pm.run(step_circuit))


def _candidate_pass_managers(resolved: ResolvedTarget, step_circuit, optimization_level: int, seed, layout: str) -> list:
    """``(label, pass manager)`` pairs to try: the generic basis, or a device's default and compact layouts.

    Raises:
        ValueError: for control flow the device lacks, or a circuit wider than it.
    """
    if not resolved.is_device:
        pm = generate_preset_pass_manager(optimization_level=optimization_level, basis_gates=list(GENERIC_BASIS),
                                          seed_transpiler=seed)
        return [("generic", pm)]
    backend = resolved.backend
    flow = sorted({i.operation.name for i in step_circuit.data} & _CONTROL_FLOW)
    missing = [name for name in flow if name not in set(backend.target.operation_names)]
    if missing:
        raise ValueError(
            f"{resolved.name} does not support {missing} (dynamic circuits); build with "
            "neuron_mode 'postselect' for this backend."
        )
    if step_circuit.num_qubits > backend.num_qubits:
        raise ValueError(f"The circuit needs {step_circuit.num_qubits} qubits but {resolved.name} has {backend.num_qubits}.")
    options = {"optimization_level": optimization_level, "backend": backend, "seed_transpiler": seed}
    candidates = []
    if layout in ("auto", "default"):
        candidates.append(("default", generate_preset_pass_manager(**options)))
    if layout in ("auto", "compact"):
        for initial in compact_layouts(backend, step_circuit):
            candidates.append(("compact", generate_preset_pass_manager(**options, initial_layout=initial)))
    return candidates


def _device_figures(backend, step_circuit, compiled, length: int, optimization_level: int, seed) -> dict:
    """Layout, routing overhead (against all-to-all coupling), duration and success estimate."""
    free = generate_preset_pass_manager(
        optimization_level=optimization_level,
        basis_gates=[n for n in backend.target.operation_names if n not in _CONTROL_FLOW],
        seed_transpiler=seed,
    ).run(step_circuit)
    unrouted = _two_qubit_count(free)
    step_success = _success_estimate(compiled, backend)
    return {
        "backend_qubits": backend.num_qubits,
        "layout": compiled.layout.initial_index_layout(filter_ancillas=True) if compiled.layout else None,
        "two_qubit_gates_per_step_all_to_all": unrouted,
        "swap_overhead_two_qubit_gates_per_step": _two_qubit_count(compiled) - unrouted,
        "duration_seconds": _duration(compiled, backend) * length,
        "success_probability_estimate": step_success**length,
        "success_probability_estimate_per_step": step_success,
    }
