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

__all__ = ["emit_rus_neuron"]


def emit_rus_neuron(circuit: QuantumCircuit, gates, order: int, retries: int, lanes, target, ancillas, flags) -> None:
    """Append one neuron in RUS mode; ``flags`` are its ``rus_flags_per_neuron`` classical bits."""
    chain = [*ancillas, target]
    a0 = ancillas[0]
    flag_iter = iter(flags)
    measure, reset = Measure(), Reset()
    fix_plus, fix_minus = RYGate(math.pi / 2), RYGate(-math.pi / 2)
    depth = 0  # > 0 inside a retry body, where only the public append reaches the builder scope

    def emit(op, qargs, cargs=()) -> None:
        if depth:
            circuit.append(op, qargs, cargs, copy=False)
        else:
            circuit._append(CircuitInstruction(op, tuple(qargs), tuple(cargs)))

    def param_block(inverse: bool) -> None:
        gates.emit_block(emit, inverse, lanes, a0)

    def body(level: int, dagger: bool, retry: bool) -> None:
        static = gates.cry_inverse if dagger else gates.cry
        if level == 0:
            param_block(False)
            emit(static, (chain[0], chain[1]))
            param_block(True)
        else:
            block(level - 1, False, retry)
            emit(static, (chain[level], chain[level + 1]))
            block(level - 1, True, retry)

    def measure_reset(level: int):
        bit = next(flag_iter)
        emit(measure, (ancillas[level],), (bit,))
        emit(reset, (ancillas[level],))
        return bit

    def block(level: int, dagger: bool, retry: bool) -> None:
        nonlocal depth
        body(level, dagger, retry)
        bit = measure_reset(level)
        if not retry:
            return
        fix = fix_minus if dagger else fix_plus
        for _ in range(retries):
            with circuit.if_test((bit, 1)):
                depth += 1
                emit(fix, (chain[level + 1],))
                body(level, dagger, False)
                bit = measure_reset(level)
                depth -= 1

    block(order - 1, False, True)
    if next(flag_iter, None) is not None:  # pragma: no cover - internal consistency
        raise AssertionError("rus flag count mismatch")
