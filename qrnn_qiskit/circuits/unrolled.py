"""A QRNN sequence held as its distinct cell steps: exact logical figures and OpenQASM 3 without
building the whole circuit.

The unrolled circuit repeats one cell step ``T`` times; the steps differ only in their input
bits (an ``x`` parameter per io lane, or an X gate where a bound bit is 1) and in the classical
bits they write (``out`` and ``flag`` of their own step). :class:`UnrolledSequence` builds each
distinct step once, as a one-step circuit, and derives from it what ``qrnn build`` reports and
writes:

* operation counts are the steps' counts summed;
* the depth is :meth:`QuantumCircuit.depth`'s, composed step by step: each step is summarised by
  the longest path (in counted operations) from every qubit's entry, and from the step's start,
  to every qubit's exit and to its classical bits; a step's classical bits are its own, so the
  levels carried from step to step are the qubits' (a max-plus product per step);
* OpenQASM 3 is the one-step text with the step's classical-bit and input indices filled in.

Why: on the 99-step MNIST circuit (1.3 M operations) ``QuantumCircuit.depth`` alone took 3.3 s
and a pass over the instructions 1.5 s (about 2.5 us an instruction in Python), while the steps
take milliseconds; ``benchmarks/build.py`` measures both. The whole circuit is still built, once,
when :attr:`UnrolledSequence.circuit` is read. Tests hold every figure and the text equal to those
of the whole circuit (``tests/circuits/test_unrolled.py``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ClassicalRegister, Clbit, ParameterVector

from qrnn_qiskit.circuits.cell import checked_values, qrnn_sequence, sequence_registers
from qrnn_qiskit.circuits.export import export_qasm, qasm3_header, qasm3_lines, write_export
from qrnn_qiskit.circuits.report import logical_report, operation_counts
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode

__all__ = ["UnrolledSequence"]

_FIELD = "\x01"  # brackets a step-dependent index in a step's OpenQASM text; never in QASM itself
_STEP_INPUT = re.compile(r"\bx_(\d+)\b")


class UnrolledSequence:
    """:func:`~qrnn_qiskit.circuits.qrnn_sequence` held as its distinct steps (same arguments).

    ``circuit`` is the whole circuit (built on first use); :meth:`logical_report` and
    :meth:`export` give what :func:`~qrnn_qiskit.circuits.report.logical_report` and
    :func:`~qrnn_qiskit.circuits.export.export_qasm` give for it, computed from the steps when the
    inputs are the default ``x`` parameters or bound bits (from the whole circuit otherwise).
    """

    def __init__(self, config: QRNNConfig, length: int, *, weights=None, inputs=None,
                 neuron_mode: str | NeuronMode = "postselect", synthesis: str = "auto",
                 insert_barriers: bool = False, noise_markers: bool = False, name: str = "QRNN") -> None:
        self._default_inputs = inputs is None
        length, weights, inputs = checked_values(config, length, weights, inputs)
        self.config, self.length, self.mode = config, length, NeuronMode.parse(neuron_mode)
        self._options = {"weights": weights, "neuron_mode": self.mode, "synthesis": synthesis,
                         "insert_barriers": insert_barriers, "noise_markers": noise_markers}
        self._inputs, self._name = inputs, name
        self._numeric = isinstance(inputs, np.ndarray)
        self._compositional = self._default_inputs or self._numeric
        self._step_x = ParameterVector("x", config.input_width)  # a symbolic step's inputs
        self._steps: dict[tuple, QuantumCircuit] = {}
        self._figures: dict[tuple, _StepFigures] = {}

    @functools.cached_property
    def circuit(self) -> QuantumCircuit:
        """The whole unrolled circuit (built on first use; ``length`` times one step's operations)."""
        return qrnn_sequence(self.config, self.length, inputs=None if self._default_inputs else self._inputs,
                             name=self._name, **self._options)

    def _key(self, step: int) -> tuple:
        width = self.config.input_width
        return tuple(int(b) for b in self._inputs[step * width:(step + 1) * width]) if self._numeric else ()

    def step_circuit(self, step: int) -> QuantumCircuit:
        """Step ``step`` as a one-step circuit (inputs ``x[0..I-1]`` when symbolic; shared by equal steps)."""
        key = self._key(step)
        if key not in self._steps:
            inputs = np.asarray(key, dtype=float) if self._numeric else self._step_x
            self._steps[key] = qrnn_sequence(self.config, 1, inputs=inputs, name=self._name, **self._options)
        return self._steps[key]

    def _step_figures(self, step: int) -> _StepFigures:
        key = self._key(step)
        if key not in self._figures:
            self._figures[key] = _StepFigures(self.step_circuit(step))
        return self._figures[key]

    def logical_report(self) -> dict:
        """:func:`~qrnn_qiskit.circuits.report.logical_report` of :attr:`circuit`, from the steps."""
        if not self._compositional or any(self._step_figures(t).transfer is None for t in range(self.length)):
            return logical_report(self.circuit)
        counts, controls = Counter(), Counter()
        levels = np.zeros(self.config.num_qubits + 1)  # the qubits' depths, then the start (0)
        deepest = 0.0
        for t in range(self.length):
            figures = self._step_figures(t)
            counts.update(figures.counts)
            controls.update(figures.controls)
            deepest = max(deepest, float(np.max(levels + figures.clbits)))
            levels[:-1] = np.max(levels[:, None] + figures.transfer, axis=0)
        one = self.step_circuit(0)
        parameters = len(one.parameters) + (self.length - 1) * self.config.input_width * (not self._numeric)
        return _report(one.num_qubits, self.length * one.num_clbits, int(max(deepest, levels[:-1].max())),
                       counts, controls, parameters, self._metadata())

    def _metadata(self) -> dict:
        return {**self.config.to_dict(), "length": self.length, "neuron_mode": str(self.mode)}

    def export(self, path, *, fmt: str = "qasm3"):
        """:func:`~qrnn_qiskit.circuits.export.export_qasm` of :attr:`circuit` (same text, same
        sidecar), written from the steps for OpenQASM 3."""
        text = self._qasm3() if fmt == "qasm3" and self._compositional else None
        if text is None:
            return export_qasm(self.circuit, path, fmt=fmt)
        body, names, parameters = text
        return write_export(path, body, fmt, names, self._metadata(), parameters)

    def _qasm3(self):
        """``(text, declared names, parameters)`` of the whole circuit, or None outside the direct writer's gate set."""
        parameters = self._parameters()
        registers = sequence_registers(self.config, self.length, self.mode, self._name)
        header = qasm3_header(parameters, registers.qregs, registers.cregs)
        if header is None:
            return None
        lines, names = header
        pieces = {}
        for key in {self._key(t) for t in range(self.length)}:
            pieces[key] = _step_pieces(self.step_circuit(self._first_step(key)), symbolic=not self._numeric)
            if pieces[key] is None:
                return None
        flags = registers.cregs[1].size // self.length
        chunks = ["\n".join(lines), "\n"]
        for t in range(self.length):
            bases = {"o": t * self.config.input_width, "f": t * flags, "x": t * self.config.input_width}
            chunks += [piece if isinstance(piece, str) else str(bases[piece[0]] + piece[1])
                       for piece in pieces[self._key(t)]]
        return "".join(chunks), names, parameters

    def _first_step(self, key: tuple) -> int:
        return next(t for t in range(self.length) if self._key(t) == key)

    def _parameters(self) -> list:
        """The whole circuit's parameters in its order (Qiskit's sort of a circuit holding them)."""
        holder = QuantumCircuit(1)
        step_inputs = set(self._step_x)
        used = [p for p in self.step_circuit(0).parameters if p not in step_inputs]
        if not self._numeric:
            used += list(ParameterVector("x", self.length * self.config.input_width))
        for parameter in used:
            holder.rz(parameter, 0)
        return list(holder.parameters)


def _step_pieces(step: QuantumCircuit, symbolic: bool) -> list | None:
    """A step's OpenQASM 3 lines split at its step-dependent indices: literal text, and between
    the pieces ``(kind, i)`` with kind ``o``/``f``/``x`` (out bit, flag bit, input ``i`` of the step)."""
    out, flag = step.cregs
    registers = {bit: f"{reg.name}[{i}]" for reg in step.qregs for i, bit in enumerate(reg)}
    registers.update({bit: f"out[{_FIELD}o{i}{_FIELD}]" for i, bit in enumerate(out)})
    registers.update({bit: f"flag[{_FIELD}f{i}{_FIELD}]" for i, bit in enumerate(flag)})
    lines = qasm3_lines(step, registers)
    if lines is None:
        return None
    text = "\n".join(lines) + "\n"
    if symbolic:
        text = _STEP_INPUT.sub(lambda m: f"x_{_FIELD}x{m.group(1)}{_FIELD}", text)
    split = text.split(_FIELD)
    return [piece if i % 2 == 0 else (piece[0], int(piece[1:])) for i, piece in enumerate(split)]


class _StepFigures:
    """One step's operation counts and its depth transfer (see the module's docstring).

    ``transfer[p, q]``: the longest path of counted operations from qubit ``p``'s entry (row
    ``num_qubits``: from the step's start) to qubit ``q``'s exit, ``-inf`` where there is none;
    ``clbits[p]``: the same to the deepest of the step's classical bits. ``transfer`` is None when
    an operation's resources are outside what the rule covers (a classical expression).
    """

    def __init__(self, step: QuantumCircuit) -> None:
        self.counts, self.controls = operation_counts(step)
        self.transfer, self.clbits = _transfer(step)


def _transfer(step: QuantumCircuit):
    n = step.num_qubits
    start = np.full(n + 1, -np.inf)
    start[n] = 0.0
    paths = {}
    for q, qubit in enumerate(step.qubits):
        paths[qubit] = np.full(n + 1, -np.inf)
        paths[qubit][q] = 0.0
    paths.update({clbit: start for clbit in step.clbits})
    for inst in step.data:
        wires = [*inst.qubits, *inst.clbits]
        condition = getattr(inst.operation, "_condition", None)
        if condition is not None:
            target = condition[0] if isinstance(condition, tuple) else None
            if isinstance(target, Clbit):
                wires.append(target)
            elif isinstance(target, ClassicalRegister):
                wires.extend(target)
            else:
                return None, None
        level = np.max([paths[w] for w in wires], axis=0) if wires else start
        if not getattr(inst.operation, "_directive", False):
            level = level + 1.0
        for wire in wires:
            paths[wire] = level
    transfer = np.stack([paths[q] for q in step.qubits], axis=1)
    clbits = np.max([paths[c] for c in step.clbits], axis=0) if step.clbits else np.full(n + 1, -np.inf)
    return transfer, clbits


def _report(qubits: int, clbits: int, depth: int, counts: Counter, controls: Counter, parameters: int,
            metadata: dict) -> dict:
    """The dictionary of :func:`~qrnn_qiskit.circuits.report.logical_report`, from its figures."""
    return {
        "qubits": qubits,
        "clbits": clbits,
        "depth": depth,
        "operations": dict(sorted(counts.items())),
        "controlled_rotations": dict(sorted(controls.items(), key=lambda kv: int(kv[0]))),
        "measurements": counts.get("measure", 0),
        "resets": counts.get("reset", 0),
        "if_else_blocks": counts.get("if_else", 0),
        "parameters": parameters,
        "metadata": metadata,
    }
