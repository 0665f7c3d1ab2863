"""What an amplified neuron computes: a complex 2x2 map of its target per source pattern.

For a computational-basis pattern ``x`` of its sources, a neuron's gates act on its ``k``
ancillas and its target only, with the angle ``Theta(x)`` of its parameter block (``RY(Theta)`` on
``a0``). So the whole neuron, conditioned on every ancilla reading 0 at its end, is a 2x2 map
``M(Theta)`` of the target. In ``postselect`` mode ``M = [[C, -S], [S, C]]`` with
``C, S = cos, sin(Theta/2)**(2**k)``. In ``amplify:L`` mode (:mod:`qrnn_qiskit.circuits.amplify`)
``M`` has the same shape ``[[A, -B], [B, A]]`` with complex ``A, B`` (the fixed-point sequence's
phase depends on the attempt's success probability, so on ``Theta``), and this module computes
``A``, ``B`` and their derivatives in ``Theta`` by simulating the neuron's ``k + 1`` qubits exactly,
vectorised over any number of angles: one batched ``2**(k+1)``-square matrix product per gate
group, with forward-mode derivatives by the product rule.

That the amplified map keeps the ``[[A, -B], [B, A]]`` shape is checked, not assumed: the
simulation returns the whole matrix and :func:`amplified_activation` verifies it.
"""

from __future__ import annotations

import math

import numpy as np

from qrnn_qiskit.core.schedule import FixedPointSchedule

__all__ = ["amplified_activation", "neuron_map"]

# Qubit i of the tiny simulation is bit i of the index (Qiskit's order): ancillas a_0..a_{k-1},
# then the target at bit k.


def _ry(theta: np.ndarray, qubit: int, n: int, derivative: bool):
    """``RY(theta)`` on ``qubit`` of ``n`` (batched over ``theta``) and its derivative."""
    c, s = np.cos(0.5 * theta), np.sin(0.5 * theta)
    dim = 1 << n
    mat = np.zeros((theta.size, dim, dim), dtype=complex)
    dmat = np.zeros_like(mat) if derivative else None
    bit = 1 << qubit
    for i in range(dim):
        if i & bit:
            continue
        j = i | bit
        mat[:, i, i], mat[:, i, j], mat[:, j, i], mat[:, j, j] = c, -s, s, c
        if derivative:
            dmat[:, i, i], dmat[:, i, j], dmat[:, j, i], dmat[:, j, j] = -0.5 * s, -0.5 * c, 0.5 * c, -0.5 * s
    return mat, dmat


def _cry(angle: float, control: int, target: int, n: int) -> np.ndarray:
    """``CRY(angle)`` from ``control`` to ``target`` on ``n`` qubits (a constant)."""
    dim = 1 << n
    mat = np.eye(dim, dtype=complex)
    c, s = math.cos(0.5 * angle), math.sin(0.5 * angle)
    cbit, tbit = 1 << control, 1 << target
    for i in range(dim):
        if not i & cbit or i & tbit:
            continue
        j = i | tbit
        mat[i, i], mat[i, j], mat[j, i], mat[j, j] = c, -s, s, c
    return mat


def _mul(x, y):
    """``(X, dX) . (Y, dY)`` with the product rule (``None`` derivative: a constant)."""
    (a, da), (b, db) = x, y
    value = a @ b
    if da is None and db is None:
        return value, None
    d = None if da is None else da @ b
    if db is not None:
        d = a @ db if d is None else d + a @ db
    return value, d


def _dagger(x):
    a, da = x
    t = np.swapaxes(a, -1, -2).conj()
    return t, None if da is None else np.swapaxes(da, -1, -2).conj()


def _amplify(u, zero: np.ndarray, schedule: FixedPointSchedule):
    """``W_L = G_l ... G_1 U`` with ``G = -S_s(alpha) S_t(beta)`` and ``zero`` the 0/1 diagonal
    of the projector on the level's ancillas reading 0."""
    w = u
    u_dag = _dagger(u)
    for alpha, beta in zip(schedule.alphas, schedule.betas):
        s_t = np.diag(1.0 - (1.0 - np.exp(1j * beta)) * zero)
        s_0 = np.diag(1.0 - (1.0 - np.exp(-1j * alpha)) * zero)
        s_s = _mul(_mul(u, (s_0, None)), u_dag)
        w = _mul(s_s, (s_t @ w[0], None if w[1] is None else s_t @ w[1]))
        w = (-w[0], None if w[1] is None else -w[1])
    return w


def neuron_map(theta: object, order: int, uses: int | None, derivative: bool = False):
    """The neuron's full ``(m, 2**(k+1), 2**(k+1))`` matrix per angle, and its derivative.

    ``uses=None`` is the attempt without amplification and without measurement (the unitary
    ``A_{k-1}`` of the postselect circuit's gates); an odd ``uses`` is ``amplify:uses``.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float)).reshape(-1)
    n = order + 1
    p, dp = _ry(theta, 0, n, derivative)
    p_dag = _dagger((p, dp))
    schedule = FixedPointSchedule(uses) if uses is not None else None

    done: dict = {}  # both blocks of a level serve every level above it: each is computed once

    def level(r: int, dagger: bool):
        if (r, dagger) in done:
            return done[r, dagger]
        static = (_cry(-math.pi if dagger else math.pi, r, r + 1, n), None)
        if r == 0:
            u = _mul(_mul(p_dag, static), (p, dp))  # circuit order: P, C, P^dagger
        else:
            u = _mul(_mul(level(r - 1, True), static), level(r - 1, False))
        if schedule is not None:
            zero = np.array([0.0 if idx & ((1 << (r + 1)) - 1) else 1.0 for idx in range(1 << n)])
            u = _amplify(u, zero, schedule)
        done[r, dagger] = u
        return u

    return level(order - 1, False)


def amplified_activation(theta: object, order: int, uses: int, derivative: bool = False):
    """``(A, B)`` of the amplified neuron at each angle (complex arrays shaped like ``theta``), or
    with ``derivative`` also ``(dA/dTheta, dB/dTheta)``: ``(A, B, dA, dB)``.

    Conditioned on its ancillas reading 0, the neuron maps the target amplitudes ``(a, b)`` of a
    source pattern to ``(A a - B b, B a + A b)``; ``|A|**2 + |B|**2`` is its success probability.

    Raises:
        AssertionError: if the simulated map is not of that shape (it always is, to rounding).
    """
    theta = np.asarray(theta, dtype=float)
    flat = theta.reshape(-1)
    mat, dmat = neuron_map(flat, order, uses, derivative)
    t = 1 << order  # index of target = 1 with every ancilla 0
    a, b = mat[:, 0, 0], mat[:, t, 0]
    if np.abs(mat[:, t, t] - a).max(initial=0) > 1e-9 or np.abs(mat[:, 0, t] + b).max(initial=0) > 1e-9:
        raise AssertionError("the amplified neuron's map lost its [[A, -B], [B, A]] shape")
    out = [a.reshape(theta.shape), b.reshape(theta.shape)]
    if derivative:
        out += [dmat[:, 0, 0].reshape(theta.shape), dmat[:, t, 0].reshape(theta.shape)]
    return tuple(out)


def neuron_failure_bound(order: int, uses: int, grid: int = 2049) -> float:
    """The largest probability that an ``amplify:uses`` neuron of ``order`` fails (some ancilla
    reads 1), over ``grid`` angles in ``[0, 2 pi)`` and every target state: ``1 - sigma_min(M)**2``
    of its map ``M``. A grid maximum, so a lower estimate of the supremum between grid points."""
    theta = np.linspace(0.0, 2.0 * np.pi, grid, endpoint=False)
    a, b = amplified_activation(theta, order, uses)
    # singular values of [[A, -B], [B, A]]: |A -/+ i B| (it is A I + B (-i sigma_y)-like, normal)
    smallest = np.minimum(np.abs(a - 1j * b), np.abs(a + 1j * b))
    return float(np.max(1.0 - smallest**2))
