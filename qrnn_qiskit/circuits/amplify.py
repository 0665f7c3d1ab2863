"""Fixed-point oblivious amplitude amplification of a neuron (neuron mode ``amplify:L``).

Yoder, Low and Chuang (PRL 113, 210501, 2014; arXiv:1409.3305): with ``U`` one attempt and
``Pi`` the projector on its ancillas reading ``|0...0>``,

    S_t(beta)  = I - (1 - e^{i beta}) Pi
    S_s(alpha) = U [I - (1 - e^{-i alpha}) Pi] U^dagger
    G(alpha, beta) = -S_s(alpha) S_t(beta)
    W_L = G(alpha_l, beta_l) ... G(alpha_1, beta_1) U          (L = 2 l + 1 uses of U or U^dagger)

with ``1/gamma = cosh(arccosh(1/delta) / L)`` and ``alpha_j = -beta_{l-j+1} =
2 arccot(tan(2 pi j / L) sqrt(1 - gamma**2))``. An attempt that succeeds with probability ``p``
succeeds after amplification with ``P_L(p) = 1 - delta**2 T_L(sqrt(1 - p) / gamma)**2`` (``T_L``
the Chebyshev polynomial), at least ``1 - delta**2`` whenever ``p >= 1 - gamma**2``.

A neuron's innermost attempt succeeds with ``p = cos^4 + sin^4`` of half its angle, at least 1/2,
whatever the target's state, so the schedule is fixed by ``p_min = 1/2``: ``gamma**2 = 1/2`` and
``delta = 1 / T_L(sqrt 2)``. For each basis pattern of the sources the attempt's good part is
``sqrt(p)`` times a rotation of the target, so the amplification is oblivious branch by branch.

Nesting (order ``k > 1``) is level by level: the level-``r`` attempt is built from the amplified
level-``r-1`` blocks (``A_r = W_{r-1} . C_r . W_{r-1}^dag``, circuit order), and its reflections
act on all of the level's ancillas ``a_0 .. a_r``. Amplifying the flat order-``k`` circuit on
"all ancillas 0" instead gives a different activation. The inner levels leave ``O(delta)``
amplitude on their ancillas, so an outer attempt's ``p`` can dip slightly below 1/2 and its
guarantee is close to, not exactly, ``1 - delta**2``; the exact acceptance of a whole neuron is
the engine's (:func:`qrnn_qiskit.engine.amplified.amplified_activation`), and
:func:`neuron_failure_bound` gives its worst case over all angles.

No measurement happens inside an amplified neuron: its ``k`` ancillas are measured (and reset) once
at its end, and a shot is accepted when every one reads 0.
"""

from __future__ import annotations

import math

from qiskit.circuit import CircuitInstruction, Measure, Reset
from qiskit.circuit.library import CRYGate, MCPhaseGate, PhaseGate, XGate

from qrnn_qiskit.core.programs import amplified_steps

__all__ = ["emit_amplified_neuron"]


def emit_amplified_neuron(circuit, gates, order: int, uses: int, lanes, target, ancillas, flags) -> None:
    """Append one neuron in ``amplify:uses`` mode, then measure and reset each ancilla into ``flags``."""
    chain = [*ancillas, target]
    a0 = ancillas[0]
    append = circuit._append
    flip = XGate()
    cry = {1: gates.cry, -1: gates.cry_inverse}
    phases: dict = {}
    sign_flips = 0

    def emit(gate, qargs) -> None:
        append(CircuitInstruction(gate, tuple(qargs), ()))

    for step in amplified_steps(order, uses):
        kind = step[0]
        if kind == "P":
            for instruction in gates.block_instructions(step[1], lanes, a0):
                append(instruction)
        elif kind == "C":
            emit(cry.get(step[2]) or CRYGate(step[2] * math.pi), (chain[step[1]], chain[step[1] + 1]))
        elif kind == "Z":
            level, phi = step[1], step[2]
            key = (level, phi)
            if key not in phases:
                phases[key] = PhaseGate(phi) if level == 0 else MCPhaseGate(phi, level)
            for q in ancillas[: level + 1]:
                emit(flip, (q,))
            emit(phases[key], ancillas[: level + 1])
            for q in ancillas[: level + 1]:
                emit(flip, (q,))
        else:
            sign_flips += 1
    if sign_flips % 2:
        circuit.global_phase += math.pi
    measure, reset = Measure(), Reset()
    for q, bit in zip(ancillas, flags, strict=True):
        append(CircuitInstruction(measure, (q,), (bit,)))
        append(CircuitInstruction(reset, (q,), ()))
