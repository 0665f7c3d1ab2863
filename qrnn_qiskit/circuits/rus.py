"""Repeat-until-success neurons as dynamic circuits (neuron mode ``rus[:R]``, see :class:`~qrnn_qiskit.core.modes.NeuronMode`).

A neuron of order ``k`` is a nest of blocks: block ``r`` ends by measuring ancilla ``a_r``, and its
static gate is ``CRY(+pi)`` (or ``CRY(-pi)`` in a daggered block) from ``L[r]`` to ``L[r+1]`` with
``L = [a0, ..., a_{k-1}, target]``. Conditioned on the inner ancillas reading 0, a computational-basis
source pattern leaves the failure branch of block ``r`` (``a_r`` reads 1) with ``L[r+1]`` multiplied by
``c s (Y' - I)``, proportional to ``RY(-pi/2)`` for ``CRY(+pi)`` (``RY(+pi/2)`` for ``CRY(-pi)``), where
``Y' = RY(pi)``. So the correction is ``RY(+pi/2)`` (``RY(-pi/2)``) on ``L[r+1]``, after which the block
is tried again. The correction is exact for basis-state sources and approximate on superpositions
(the failure amplitude depends on the pattern).

The retries are unrolled: after a block's measurement into bit ``c_0``, ``R`` times
``if (c_{j-1} == 1) { correct; block; measure a_r -> c_j; reset }``. IBM devices run ``if_else`` but
no nested control flow and no ``while_loop``, so blocks re-run *inside* a retry body are not
retried themselves; their measurements must read 0. A shot is accepted when the last bit of every
retry chain and every measurement inside a retry body read 0 (:func:`qrnn_qiskit.core.modes.rus_acceptance_mask`).
"""

from __future__ import annotations

import math

from qiskit.circuit import CircuitInstruction, Measure, QuantumCircuit, Reset
from qiskit.circuit.library import RYGate

from qrnn_qiskit.core.programs import rus_program

__all__ = ["emit_rus_neuron"]


def emit_rus_neuron(circuit: QuantumCircuit, gates, order: int, retries: int, lanes, target, ancillas, flags) -> None:
    """Append one neuron in RUS mode (:func:`qrnn_qiskit.core.programs.rus_program`); ``flags``
    are its ``rus_flags_per_neuron`` classical bits."""
    chain = [*ancillas, target]
    a0 = ancillas[0]
    flag_iter = iter(flags)
    written: list = []  # the flag bits in the order the program writes them
    measure, reset = Measure(), Reset()
    fixes = {1: RYGate(math.pi / 2), -1: RYGate(-math.pi / 2)}
    cry = {1: gates.cry, -1: gates.cry_inverse}

    def emit(op, qargs, cargs=(), inside=False) -> None:
        if inside:  # only the public append reaches the builder scope of an if_test body
            circuit.append(op, qargs, cargs, copy=False)
        else:
            circuit._append(CircuitInstruction(op, tuple(qargs), tuple(cargs)))

    def run(steps, inside: bool) -> None:
        for step in steps:
            kind = step[0]
            if kind == "P":
                gates.emit_block(lambda gate, qargs: emit(gate, qargs, inside=inside), step[1], lanes, a0)
            elif kind == "C":
                emit(cry[step[2]], (chain[step[1]], chain[step[1] + 1]), inside=inside)
            elif kind == "FIX":
                emit(fixes[step[2]], (chain[step[1] + 1],), inside=inside)
            elif kind == "M":
                bit = next(flag_iter)
                written.append(bit)
                emit(measure, (ancillas[step[1]],), (bit,), inside=inside)
                emit(reset, (ancillas[step[1]],), inside=inside)
            else:  # ("IF", bit, body)
                with circuit.if_test((written[step[1]], 1)):
                    run(step[2], True)

    run(rus_program(order, retries), False)
    if next(flag_iter, None) is not None:  # pragma: no cover - internal consistency
        raise AssertionError("rus flag count mismatch")
