"""Gate-level quantum neuron: the nested repeat-until-success circuit of Cao et al. as used by the QRNN.

For a neuron of order ``k`` with ancillas ``a0 .. a_{k-1}`` and target ``t``, let ``P`` be the
parameter block on ``a0`` (one ``RY(bias + theta)`` plus one multi-controlled ``RY(phi_S)`` per
source subset ``S``) and ``L = [a0, ..., a_{k-1}, t]``. With ``C_r = CRY(pi)`` from ``L[r]`` to
``L[r+1]`` (``C_r^dagger = CRY(-pi)``)::

    B_0(dag) = P . C_0(dag) . P^dagger . measure a0
    B_r(dag) = B_{r-1} . C_r(dag) . B_{r-1}(dag=True) . measure a_r

and the neuron is ``B_{k-1}``: ``2**k`` parameter blocks, ``2**k - 1`` ``CRY(+-pi)`` gates and
``2**k - 1`` ancilla measurements, each followed by a reset. Conditioned on every ancilla reading
0, a computational-basis source pattern ``x`` rotates the target by
``[[c**N, -s**N], [s**N, c**N]]`` (unnormalised), ``N = 2**k``, ``c, s = cos, sin(Theta(x)/2)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import CircuitInstruction, Measure, ParameterExpression, ParameterVector, Reset
from qiskit.circuit.library import CRYGate, XGate

from qrnn_qiskit.circuits.amplify import emit_amplified_neuron
from qrnn_qiskit.circuits.rus import emit_rus_neuron
from qrnn_qiskit.circuits.synthesis import choose_strategy, synthesize_block
from qrnn_qiskit.core.config import num_neuron_weights
from qrnn_qiskit.core.modes import NeuronMode

__all__ = ["NeuronGates", "NeuronOp", "emit_neuron", "neuron_program", "quantum_neuron"]

ParameterLike = ParameterExpression | float


@dataclass(frozen=True)
class NeuronOp:
    """One element of a neuron's gate program.

    ``kind`` is ``"P"`` (parameter block), ``"Pdg"`` (its inverse), ``"C"`` (``CRY(+pi)`` from
    ``L[level]`` to ``L[level+1]``), ``"Cdg"`` (``CRY(-pi)``) or ``"M"`` (measure ancilla
    ``level`` into the next flag bit, then reset it).
    """

    kind: str
    level: int = 0


def neuron_program(order: int) -> tuple[NeuronOp, ...]:
    """The gate program of a neuron of ``order``, following the reference's recursion."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}.")

    def block(level: int, dagger: bool) -> list[NeuronOp]:
        static = NeuronOp("Cdg" if dagger else "C", level)
        if level == 0:
            body = [NeuronOp("P"), static, NeuronOp("Pdg")]
        else:
            body = [*block(level - 1, False), static, *block(level - 1, True)]
        return [*body, NeuronOp("M", level)]

    return tuple(block(order - 1, False))


class NeuronGates:
    """The gate objects of one neuron, created once and shared by every step of a sequence
    (:func:`emit_neuron` appends them).

    ``block`` and ``inverse`` are lists of ``(gate, refs)`` where a reference is a lane or
    ``None`` for ``a0`` (see :mod:`qrnn_qiskit.circuits.synthesis`). ``inverse`` is ``None``
    where the inverse block is ``P`` conjugated by X on ``a0``: every block strategy except the
    phase polynomial is a set of Y rotations of ``a0`` conditioned on basis states, and
    ``X RY(phi) X = RY(-phi)``. Building it that way keeps every controlled gate's angle a plain
    parameter (Qiskit's OpenQASM 3 exporter applies an angle *expression* of a custom controlled
    gate twice).
    """

    __slots__ = ("block", "inverse", "cry", "cry_inverse", "flip", "strategy", "_instructions")

    def __init__(
        self,
        subsets: Sequence[Sequence[int]],
        weights: Sequence[ParameterLike],
        theta: ParameterLike,
        bias: float,
        *,
        synthesis: str = "mc",
        sources: Sequence[int] | None = None,
    ) -> None:
        if sources is None:
            sources = sorted({lane for subset in subsets for lane in subset})
        degree = max((len(s) for s in subsets), default=1)
        self.strategy = choose_strategy(synthesis, len(sources), degree)
        self.block, self.inverse = synthesize_block(self.strategy, subsets, weights, theta, bias, sources)
        self.flip = XGate()
        self.cry = CRYGate(math.pi)
        self.cry_inverse = CRYGate(-math.pi)
        self._instructions: dict = {}

    def block_instructions(self, inverse: bool, lanes, a0) -> list[CircuitInstruction]:
        """``P`` (or ``P^dagger``) as circuit instructions on these qubits, built once and reused
        by every step (instructions are immutable)."""
        key = (inverse, id(lanes), a0)
        entry = self._instructions.get(key)
        if entry is None:
            cached: list[CircuitInstruction] = []
            self.emit_block(lambda gate, qargs: cached.append(CircuitInstruction(gate, qargs, ())), inverse, lanes, a0)
            entry = self._instructions[key] = (lanes, cached)  # holding lanes keeps its id unique
        return entry[1]

    def emit_block(self, emit, inverse: bool, lanes, a0) -> None:
        """Call ``emit(gate, qargs)`` for each gate of ``P`` (or ``P^dagger``)."""
        if inverse and self.inverse is not None:
            for gate, refs in self.inverse:
                emit(gate, tuple(a0 if r is None else lanes[r] for r in refs))
            return
        if inverse:
            emit(self.flip, (a0,))
        for gate, refs in self.block:
            emit(gate, tuple(a0 if r is None else lanes[r] for r in refs))
        if inverse:
            emit(self.flip, (a0,))


def emit_neuron(circuit: QuantumCircuit, gates: NeuronGates, mode: NeuronMode, order: int, lanes: Sequence, target,
                ancillas: Sequence, flags: Sequence) -> None:
    """Append one neuron of ``order`` in ``mode`` to ``circuit``: its gates on ``lanes`` (the
    parameter block's sources), ``target`` and ``ancillas``, its measurements into ``flags``."""
    if mode.is_rus:
        emit_rus_neuron(circuit, gates, order, mode.retries, lanes, target, ancillas, flags)
    elif mode.is_amplify:
        emit_amplified_neuron(circuit, gates, order, mode.uses, lanes, target, ancillas, flags)
    else:
        _emit_postselected(circuit, gates, neuron_program(order), lanes, target, ancillas, flags)


def _emit_postselected(
    circuit: QuantumCircuit,
    gates: NeuronGates,
    program: Sequence[NeuronOp],
    lanes: Sequence,
    target,
    ancillas: Sequence,
    flags: Sequence,
) -> None:
    """Append one postselect-mode neuron (fast path; qubits and clbits are ``Bit`` objects)."""
    chain = [*ancillas, target]
    a0 = ancillas[0]
    measure, reset = Measure(), Reset()
    flag_iter = iter(flags)
    append = circuit._append
    for op in program:
        kind = op.kind
        if kind == "P" or kind == "Pdg":
            for instruction in gates.block_instructions(kind == "Pdg", lanes, a0):
                append(instruction)
        elif kind == "C" or kind == "Cdg":
            gate = gates.cry if kind == "C" else gates.cry_inverse
            append(CircuitInstruction(gate, (chain[op.level], chain[op.level + 1]), ()))
        else:
            ancilla = ancillas[op.level]
            append(CircuitInstruction(measure, (ancilla,), (next(flag_iter),)))
            append(CircuitInstruction(reset, (ancilla,), ()))


def quantum_neuron(
    num_sources: int,
    *,
    order: int = 2,
    degree: int = 2,
    bias: float = math.pi / 2,
    weights: Sequence[ParameterLike] | None = None,
    parameter_prefix: str = "w",
    neuron_mode: str | NeuronMode = "postselect",
    synthesis: str = "mc",
    name: str = "QuantumNeuron",
) -> QuantumCircuit:
    """One QRNN quantum neuron as a circuit with mid-circuit measurements.

    Qubits: ``src`` (``num_sources``), ``target`` (1), ``anc`` (``order``); classical register
    ``flag`` with one bit per ancilla measurement (``2**order - 1``). The neuron succeeded when
    every flag reads 0. Weights are ``phi_S`` for every subset ``S`` of the sources with
    ``1 <= |S| <= degree`` in :func:`itertools.combinations` order, then the bias ``theta``.

    Order 1, one source, degree 1 (``w[0]`` is phi, ``w[1]`` theta; ``P^dagger`` is ``X P X``)::

           src: ───────────────────────■───────────────────────────────────────────■───────────────────
                                       │      ┌───────┐                            │
        target: ───────────────────────┼──────┤ Ry(π) ├────────────────────────────┼───────────────────
                ┌────────────────┐┌────┴─────┐└───┬───┘┌───┐┌────────────────┐┌────┴─────┐┌───┐┌─┐
           anc: ┤ Ry(π/2 + w[1]) ├┤ Ry(w[0]) ├────■────┤ X ├┤ Ry(π/2 + w[1]) ├┤ Ry(w[0]) ├┤ X ├┤M├─|0>─
                └────────────────┘└──────────┘         └───┘└────────────────┘└──────────┘└───┘└╥┘
        flag: 1/════════════════════════════════════════════════════════════════════════════════╩══════

    Args:
        num_sources: number of lanes the neuron reads.
        order: nesting depth ``k`` (``k`` ancillas).
        degree: largest source subset that carries a weight.
        bias: fixed offset added to the ancilla angle (``pi/2``: the activation's steepest point).
        weights: ``D + 1`` numbers or parameters; a new :class:`ParameterVector` if omitted.
        parameter_prefix: name of that vector.
        neuron_mode: ``"postselect"``, ``"rus:R"`` or ``"amplify:L"`` (see :class:`~qrnn_qiskit.core.modes.NeuronMode`).
        synthesis: block strategy, one of :data:`~qrnn_qiskit.circuits.synthesis.STRATEGIES`.
        name: circuit name.

    Returns:
        The neuron circuit.

    Raises:
        ValueError: for non-positive sizes, ``degree > num_sources`` or a wrong weight count.
    """
    weights = _neuron_weights(num_sources, order, degree, weights, parameter_prefix)
    mode = NeuronMode.parse(neuron_mode)
    src, target = QuantumRegister(num_sources, "src"), QuantumRegister(1, "target")
    anc, flag = QuantumRegister(order, "anc"), ClassicalRegister(mode.flags_per_neuron(order), "flag")
    circuit = QuantumCircuit(src, target, anc, flag, name=name)
    subsets = tuple(
        itertools.chain.from_iterable(itertools.combinations(range(num_sources), r) for r in range(1, degree + 1))
    )
    gates = NeuronGates(subsets, list(weights[:-1]), weights[-1], bias, synthesis=synthesis, sources=range(num_sources))
    emit_neuron(circuit, gates, mode, order, list(src), target[0], list(anc), list(flag))
    return circuit


def _neuron_weights(num_sources: int, order: int, degree: int, weights, parameter_prefix: str):
    """``weights`` checked against the neuron's shape, or a new ``ParameterVector`` of them."""
    for label, value in (("num_sources", num_sources), ("order", order), ("degree", degree)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}.")
    if degree > num_sources:
        raise ValueError(f"degree must be at most num_sources={num_sources}, got degree={degree}.")
    count = num_neuron_weights(num_sources, degree) + 1
    if weights is None:
        weights = ParameterVector(parameter_prefix, count)
    if len(weights) != count:
        raise ValueError(
            f"Expected {count} weights ({count - 1} subset weights and the bias) for "
            f"num_sources={num_sources}, degree={degree}; got {len(weights)}."
        )
    return weights
