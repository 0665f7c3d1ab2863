"""What one neuron does, step by step, in each neuron mode: the program both the circuits and the
exact engine read.

A program is a tuple of steps on the neuron's ancillas ``a_0 .. a_{k-1}`` and its target, with
``L = [a_0, .., a_{k-1}, target]``:

``("P", inverse)``
    the parameter block ``P`` (``RY(Theta)`` on ``a_0`` for each source pattern) or its inverse;
``("C", level, sign)``
    ``CRY(sign * pi)`` from ``L[level]`` to ``L[level + 1]``;
``("M", level)``
    measure ``a_level`` into the neuron's next flag bit, then reset it;
``("IF", bit, body)``
    run the steps of ``body`` if flag bit ``bit`` (counted within the neuron) reads 1;
``("FIX", level, sign)``
    ``RY(sign * pi / 2)`` on ``L[level + 1]`` (repeat-until-success's correction);
``("Z", level, phi)``
    the phase ``e^{i phi}`` on ``a_0 .. a_level`` all reading 0;
``("-",)``
    a global sign (``G = -S_s S_t`` of the fixed-point sequence).

The circuits (:mod:`qrnn_qiskit.circuits`) emit these steps as gates; the engine simulates them
on ``k + 1`` qubits to get each neuron's map (:mod:`qrnn_qiskit.engine.instrument`), so the two
cannot drift apart.
"""

from __future__ import annotations

import math

from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.schedule import FixedPointSchedule

__all__ = ["amplified_steps", "neuron_program", "postselect_program", "rus_program", "amplify_program"]


def postselect_program(order: int) -> tuple:
    """The reference's nested neuron: ``B_r = B_{r-1} . C_r . B_{r-1}^dag . measure a_r``."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}.")

    def block(level: int, dagger: bool) -> list:
        static = ("C", level, -1 if dagger else 1)
        if level == 0:
            body = [("P", False), static, ("P", True)]
        else:
            body = [*block(level - 1, False), static, *block(level - 1, True)]
        return [*body, ("M", level)]

    return tuple(block(order - 1, False))


def rus_program(order: int, retries: int) -> tuple:
    """Repeat until success, unrolled: after a block's measurement, ``retries`` times "if the last
    bit read 1: correct and run the block again". Blocks inside a retry body are not retried
    (IBM devices run no nested control flow)."""
    counter = [0]  # flag bits written so far

    def body(level: int, dagger: bool, retry: bool) -> list:
        static = ("C", level, -1 if dagger else 1)
        if level == 0:
            return [("P", False), static, ("P", True)]
        return [*block(level - 1, False, retry), static, *block(level - 1, True, retry)]

    def measure(level: int) -> tuple[list, int]:
        counter[0] += 1
        return [("M", level)], counter[0] - 1

    def block(level: int, dagger: bool, retry: bool) -> list:
        steps = body(level, dagger, retry)
        more, bit = measure(level)
        steps += more
        if not retry:
            return steps
        for _ in range(retries):
            inner = [("FIX", level, -1 if dagger else 1), *body(level, dagger, False)]
            more, next_bit = measure(level)
            steps.append(("IF", bit, tuple(inner + more)))
            bit = next_bit
        return steps

    return tuple(block(order - 1, False, True))


def _attempt(level: int, dagger: bool, inverse: bool, schedule: FixedPointSchedule) -> list[tuple]:
    """``A_level(dagger)``, or its inverse, in circuit order."""
    sign = -1 if dagger != inverse else 1
    if level == 0:
        # A_0(d) = P, C(d), P^dagger; its inverse is P, C(not d), P^dagger
        return [("P", False), ("C", 0, sign), ("P", True)]
    first = _amplified(level - 1, inverse, inverse, schedule)
    last = _amplified(level - 1, not inverse, inverse, schedule)
    return [*first, ("C", level, sign), *last]


def _amplified(level: int, dagger: bool, inverse: bool, schedule: FixedPointSchedule) -> list[tuple]:
    """``W_L(A_level(dagger))`` or its inverse, in circuit order."""
    u = _attempt(level, dagger, False, schedule)
    u_inv = _attempt(level, dagger, True, schedule)
    pairs = list(zip(schedule.alphas, schedule.betas))
    program = list(u) if not inverse else []
    if not inverse:
        for alpha, beta in pairs:  # G_j = -S_s(alpha_j) S_t(beta_j): S_t first, then U^dag, S_0, U
            program += [("Z", level, beta), *u_inv, ("Z", level, -alpha), *u, ("-",)]
        return program
    for alpha, beta in reversed(pairs):
        program += [("-",), *u_inv, ("Z", level, alpha), *u, ("Z", level, -beta)]
    return program + u_inv


def amplified_steps(order: int, uses: int) -> list[tuple]:
    """The steps of an ``amplify:uses`` neuron of ``order`` before its measurements."""
    return _amplified(order - 1, False, False, FixedPointSchedule(uses))


def amplify_program(order: int, uses: int) -> tuple:
    """Fixed-point amplification level by level, then each ancilla measured once."""
    return (*amplified_steps(order, uses), *(("M", level) for level in range(order)))


def neuron_program(mode: NeuronMode, order: int) -> tuple:
    """The program of a neuron of ``order`` in ``mode``; ``keep`` runs the postselect circuit and
    keeps every shot."""
    if mode.is_rus:
        return rus_program(order, mode.retries)
    if mode.is_amplify:
        return amplify_program(order, mode.uses)
    return postselect_program(order)


#: ``RY(pi/2)``'s angle, the repeat-until-success correction
FIX_ANGLE = math.pi / 2
