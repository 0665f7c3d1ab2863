"""Compiled (numba) kernels of the exact engine: blocks of four sequences side by side, threaded.

These compute what :mod:`qrnn_qiskit.engine.exact`'s numpy path computes. A thread takes a block
of ``LANES`` (4) consecutive sequences and keeps their states interleaved, ``psi[w, lane]``, so that
every amplitude-pair update of a neuron is one 4-wide vector operation whichever qubit it acts on:
one AVX2 register of float64. The states stay small enough for the cache (``2**W x 4`` amplitudes,
8 KiB for the MNIST models). A work-stage rotation has one angle for all four sequences; an input
or work neuron reads each sequence's angle from the row of its io pattern (``tab[w, 0/1, io]``: the
cosines and sines of all io patterns of one workspace pattern share a cache line); an output neuron
acts on full patterns, whose table is the same for every sequence.

Measured on the MNIST 0/1 model (``benchmarks/engine.py``): see the README's performance table.
The block layout was chosen over one sequence per loop iteration because a pair loop within one
state vectorises only for qubits whose pairs lie at least four amplitudes apart; with the
sequences side by side each pair update is a vector operation on every qubit (measured: the whole
forward pass 2.4 times faster on one thread). The kernels are compiled with LLVM's SLP vectoriser
switched on (numba leaves it off by default); :mod:`~.compiled` does that around each call. Each
sequence's arithmetic is the same as one sequence alone, in the same order, so the results do
not depend on which block or lane a sequence lands in, nor on the number of threads.

Why numba and not a C extension: it installs as a wheel on every platform the package supports,
needs no compiler on the user's machine, caches its machine code on disk (``cache=True``), and
keeps the kernels readable Python beside the numpy path they are tested against.

Conventions are those of the numpy path: the full pattern index is ``ws << I | io`` with lane
``q`` at bit ``q``; io values are bit-reversed tokens (io lane 0 = the token's most significant
bit). Op arrays describe one step's input and work stages: ``kind`` 0 = a work-stage RY on
workspace lane ``lane`` with angle number ``index``, 1 = a neuron ``index`` on workspace lane
``lane``; output neurons come as (neuron, io lane).

Gradients are accumulated per sequence into rows of ``(B, P)`` and summed afterwards in sequence
order, so results do not depend on the number of threads, and a batch split into shards whose rows
are concatenated gives the same sum as the whole batch.

Where the time goes (mnist01 model, one thread, about 100 us a block and step of forward plus
gradient; measured by leaving pieces out, each in a fresh process): the forward pass 19 us, the
reverse pass's recomputation of the step 24 us, the reverse of the 24 input and work neurons
32 us (of it 6.5 us adding each lane's angle gradient into its io pattern's plane, 7 us reading
tables that do not all fit in the cache beside the kept states), the rest of the reverse 15 us.
Tried and not kept, side by side with ``benchmarks/engine_ab.py`` (no gain beyond the machine's
noise, or less than the cost): flat arrays with the pairs walked as runs and the io-plane additions
moved out of the pair loop (1.01-1.03x, bit-identical); undoing each rotation in the reverse pass
instead of recomputing the step (1.01-1.09x; dividing by ``c**2 + s**2`` or gathering its
reciprocal per lane costs most of what the recomputation cost, and results move by 1e-15).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64

# status codes written per sequence (raised as QRNNError by the caller)
OK = 0
NEURONS_VANISH = 1
OUTCOME_IMPOSSIBLE = 2
_TINY = 1e-300
#: sequences per block; the pair kernels below are written out for exactly four lanes
LANES = 4


# Pair loops index with unsigned integers: numba's signed indexing adds a negative-index check per
# access that keeps LLVM from optimising the loop (measured 2-6 ns per pair against about 1).
@njit(cache=True)
def _pair(k, bit):
    """The ``k``-th index whose lane bit ``bit`` is 0 (a zero bit inserted into ``k``)."""
    low = bit - uint64(1)
    return ((k & ~low) << uint64(1)) | (k & low)


@njit(cache=True, inline="always")
def _row(a, x):
    """The four lanes of row ``x``."""
    return a[x, 0], a[x, 1], a[x, 2], a[x, 3]


@njit(cache=True, inline="always")
def _set_row(a, x, v0, v1, v2, v3):
    """Store the four lanes of row ``x``."""
    a[x, 0], a[x, 1], a[x, 2], a[x, 3] = v0, v1, v2, v3


@njit(cache=True, inline="always")
def _turn(src, dst, x0, x1, c0, c1, c2, c3, s0, s1, s2, s3):
    """``(a, b) <- (c a - s b, s a + c b)`` on the pair of rows ``x0``, ``x1``, a cosine and sine
    per lane; all loads come before the stores (``src`` may be ``dst``)."""
    a0, a1, a2, a3 = _row(src, x0)
    b0, b1, b2, b3 = _row(src, x1)
    _set_row(dst, x0, c0 * a0 - s0 * b0, c1 * a1 - s1 * b1, c2 * a2 - s2 * b2, c3 * a3 - s3 * b3)
    _set_row(dst, x1, s0 * a0 + c0 * b0, s1 * a1 + c1 * b1, s2 * a2 + c2 * b2, s3 * a3 + c3 * b3)


@njit(cache=True, inline="always")
def _by_lane(tab, x, which, i0, i1, i2, i3):
    """Each lane's entry ``tab[x, which, io[lane]]`` of an io-pattern table."""
    return tab[x, which, i0], tab[x, which, i1], tab[x, which, i2], tab[x, which, i3]


# The pair kernels read ``src`` and write ``dst``, which may be the same array (in place) or the
# next slot of a step's kept states, so that keeping them costs no copy. Every lane's loads come
# before its stores, written out lane by lane (``_turn``): the rows could alias as far as LLVM
# knows, and a loop over the lanes would not vectorise.
@njit(cache=True)
def _rotate_uniform(src, dst, bit, c, s):
    """``(a, b) <- (c a - s b, s a + c b)`` on every pair of qubit ``bit`` (one angle for all lanes)."""
    for k in range(uint64(src.shape[0] // 2)):
        x0 = _pair(k, bit)
        _turn(src, dst, x0, x0 | bit, c, c, c, c, s, s, s, s)


@njit(cache=True)
def _rotate_shared(src, dst, bit, c, s):
    """The same with a cosine and sine per pair (read at its first index), shared by the lanes."""
    for k in range(uint64(src.shape[0] // 2)):
        x0 = _pair(k, bit)
        cc, ss = c[x0], s[x0]
        _turn(src, dst, x0, x0 | bit, cc, cc, cc, cc, ss, ss, ss, ss)


@njit(cache=True)
def _rotate_lanes(src, dst, bit, tab, io):
    """The same with each lane's own cosine and sine: ``tab[x, 0 / 1, io[lane]]``."""
    i0, i1, i2, i3 = uint64(io[0]), uint64(io[1]), uint64(io[2]), uint64(io[3])
    for k in range(uint64(src.shape[0] // 2)):
        x0 = _pair(k, bit)
        c0, c1, c2, c3 = _by_lane(tab, x0, 0, i0, i1, i2, i3)
        s0, s1, s2, s3 = _by_lane(tab, x0, 1, i0, i1, i2, i3)
        _turn(src, dst, x0, x0 | bit, c0, c1, c2, c3, s0, s1, s2, s3)


# numba's array-to-array assignment (``a[i] = b``) guards against overlap with a temporary copy,
# an allocation per call that cost more than the rotations themselves (measured: a step that keeps
# its intermediate states took 141 us a block against 29 us without); this loop copies in place.
@njit(cache=True)
def _copy(dst, src):
    """``dst[:] = src`` for two equally shaped C-contiguous 2-D arrays."""
    to = dst.reshape(-1)
    frm = src.reshape(-1)
    for i in range(uint64(frm.shape[0])):
        to[i] = frm[i]


@njit(cache=True)
def _step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved, save):
    """One cell step of a block: ``full`` <- the unnormalised states after every neuron.
    ``io[lane]`` is each sequence's io pattern at this step.

    Without ``save`` the step starts from ``psi`` and changes it in place. With ``save`` it starts
    from ``ws_saved[0]`` and keeps the state before each input or work op ``i`` in
    ``ws_saved[i]`` and before each output op ``j`` in ``full_saved[j]`` (``psi`` ends as the
    state after the work stages).
    """
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab, ucos, usin = tabs
    n_ops, n_out = kinds.shape[0], out_neurons.shape[0]
    if save and n_ops == 0:
        _copy(psi, ws_saved[0])
    for op in range(n_ops):
        src = ws_saved[op] if save else psi
        dst = ws_saved[op + 1] if save and op + 1 < n_ops else psi
        k = indices[op]
        bit = uint64(1) << uint64(lanes[op])
        if kinds[op] == 0:
            _rotate_uniform(src, dst, bit, ucos[k], usin[k])
        else:
            _rotate_lanes(src, dst, bit, wtab[k], io)
    first = full_saved[0] if save and n_out > 0 else full
    first[:] = 0.0
    for w in range(psi.shape[0]):
        for lane in range(LANES):
            first[w << num_in, lane] = psi[w, lane]
    for op in range(n_out):
        src = full_saved[op] if save else full
        dst = full_saved[op + 1] if save and op + 1 < n_out else full
        k = out_neurons[op]
        _rotate_shared(src, dst, uint64(1) << uint64(out_lanes[op]), ctab[k], stab[k])


@njit(cache=True)
def _block_weights(full, q, z, num_in):
    """Per lane: ``q[y, lane] = sum_w full[w, y, lane]**2`` and ``z[lane]`` their sum (in double),
    added in the order of :func:`outcome_weights` (the CUDA kernels' reduction)."""
    outcomes = q.shape[0]
    q[:] = 0.0
    for x in range(full.shape[0]):
        y = x & (outcomes - 1)
        for lane in range(LANES):
            q[y, lane] += full[x, lane] * full[x, lane]
    for lane in range(LANES):
        total = 0.0
        for y in range(outcomes):
            total += q[y, lane]
        z[lane] = total


@njit(cache=True)
def _postselect(psi, full, lane, y, root, num_in):
    """``psi[:, lane] <- full[:, y, lane] / root`` (the next step's start of one sequence)."""
    for w in range(psi.shape[0]):
        psi[w, lane] = full[(w << num_in) | y, lane] / root


@njit(cache=True)
def _block_io(io_inputs, b0, batch, t, alive, io):
    """Each lane's io pattern at step ``t`` (0 for padding and stopped lanes)."""
    for lane in range(LANES):
        io[lane] = io_inputs[b0 + lane, t] if b0 + lane < batch and alive[lane] else 0


@njit(cache=True)
def _start_block(psi, b0, batch, alive):
    """All lanes at |0...0>; lanes past the end of the batch (padding) are never alive."""
    psi[:] = 0.0
    for lane in range(LANES):
        psi[0, lane] = 1.0
        alive[lane] = b0 + lane < batch


@njit(cache=True)
def _stop_lane(psi, lane, alive, status, status_step, b, t, code):
    """Record a failed sequence and park its lane at |0...0> (finite numbers for the others' sake)."""
    status[b] = code
    status_step[b] = t
    alive[lane] = False
    psi[:, lane] = 0.0
    psi[0, lane] = 1.0


def outcome_weights(full, q, num_in):
    """``q[y] = sum_w full[w, y]**2`` and their sum."""
    outcomes = 1 << num_in
    q[:] = 0.0
    for x in range(full.shape[0]):
        q[x & (outcomes - 1)] += full[x] * full[x]
    z = 0.0
    for y in range(outcomes):
        z += q[y]
    return z


def draw(p, u):
    """The numpy path's inverse-CDF draw: count of cumulative sums below ``u``."""
    outcomes = p.shape[0]
    total = 0.0
    count = 0
    for y in range(outcomes):
        total += p[y]
        if total < u:
            count += 1
    drawn = min(count, outcomes - 1)
    if p[drawn] <= 0.0:  # never an outcome of probability 0 through rounding
        drawn = 0
        for y in range(outcomes):
            if p[y] > p[drawn]:
                drawn = y
    return drawn


def loss_terms(p, y, gp):
    """One scored step: ``logsumexp(p) - p[y]`` and its gradient in ``gp`` (added)."""
    m = p[0]
    for k in range(p.shape[0]):
        m = max(m, p[k])
    total = 0.0
    for k in range(p.shape[0]):
        total += math.exp(p[k] - m)
    for k in range(p.shape[0]):
        gp[k] += math.exp(p[k] - m) / total
    gp[y] -= 1.0
    return math.log(total) + m - p[y]


# The three reductions above are plain Python shared with the CUDA kernels (``_cuda.py`` compiles
# the same functions for the device), so both paths reduce in the same order; the blocks here call
# the last two, and ``_block_weights`` adds in ``outcome_weights``' order lane by lane.
_draw = njit(cache=True)(draw)
_loss_terms = njit(cache=True)(loss_terms)


@njit(cache=True)
def _advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, draw, uniforms, ops, tabs, num_in,
             probs, outcomes, taken, acceptance, status, status_step):
    """Step ``t`` of a block: every live lane's distribution, its outcome (drawn where ``draw``
    says, else its target) and its next start state; a lane whose step fails is stopped."""
    _block_io(io_inputs, b0, io_inputs.shape[0], t, alive, io)
    nothing = psi[np.newaxis]  # no intermediate states kept: a view standing in for the buffers
    _step(psi, full, io, ops, tabs, num_in, nothing, nothing, False)
    _block_weights(full, q, z, num_in)
    for lane in range(LANES):
        if not alive[lane]:
            continue
        b = b0 + lane
        if z[lane] <= _TINY:
            _stop_lane(psi, lane, alive, status, status_step, b, t, NEURONS_VANISH)
            continue
        for y in range(q.shape[0]):
            probs[b, t, y] = q[y, lane] / z[lane]
        y = _draw(probs[b, t], uniforms[b, t]) if draw[b, t] else io_targets[b, t]
        outcomes[b, t] = y
        if q[y, lane] <= _TINY:
            _stop_lane(psi, lane, alive, status, status_step, b, t, OUTCOME_IMPOSSIBLE)
            continue
        _postselect(psi, full, lane, y, math.sqrt(q[y, lane]), num_in)
        taken[b, t] = probs[b, t, y]
        acceptance[b, t] = z[lane]


@njit(cache=True, parallel=True)
def forward(io_inputs, io_targets, draw, uniforms, ops, tabs, num_in, num_ws,
            probs, outcomes, taken, acceptance, status, status_step):
    """Forward pass of ``B`` sequences (outputs in io order, written in place)."""
    batch, steps = io_inputs.shape
    num_outcomes = 1 << num_in
    dtype = tabs[0].dtype
    for block in prange((batch + LANES - 1) // LANES):
        b0 = block * LANES
        psi = np.empty((1 << num_ws, LANES), dtype)
        full = np.empty((1 << (num_ws + num_in), LANES), dtype)
        q = np.empty((num_outcomes, LANES), dtype)
        z = np.empty(LANES, np.float64)
        io = np.zeros(LANES, np.int64)
        alive = np.zeros(LANES, np.bool_)
        _start_block(psi, b0, batch, alive)
        for t in range(steps):
            if not alive.any():
                break
            _advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, draw, uniforms, ops, tabs, num_in,
                     probs, outcomes, taken, acceptance, status, status_step)


@njit(cache=True)
def _reverse_shared(state, g, bit, c, s, dc, ds, d):
    """Reverse :func:`_rotate_shared`: ``d[pair, lane] += dL/dAngle``; ``g`` <- transpose map."""
    for k in range(uint64(g.shape[0] // 2)):
        x0 = _pair(k, bit)
        x1 = x0 | bit
        cc, ss, dcc, dss = c[x0], s[x0], dc[x0], ds[x0]
        a0, a1, a2, a3 = _row(state, x0)
        b0, b1, b2, b3 = _row(state, x1)
        g0, g1, g2, g3 = _row(g, x0)
        h0, h1, h2, h3 = _row(g, x1)
        d[x0, 0] += (g0 * a0 + h0 * b0) * dcc + (h0 * a0 - g0 * b0) * dss
        d[x0, 1] += (g1 * a1 + h1 * b1) * dcc + (h1 * a1 - g1 * b1) * dss
        d[x0, 2] += (g2 * a2 + h2 * b2) * dcc + (h2 * a2 - g2 * b2) * dss
        d[x0, 3] += (g3 * a3 + h3 * b3) * dcc + (h3 * a3 - g3 * b3) * dss
        _set_row(g, x0, cc * g0 + ss * h0, cc * g1 + ss * h1, cc * g2 + ss * h2, cc * g3 + ss * h3)
        _set_row(g, x1, cc * h0 - ss * g0, cc * h1 - ss * g1, cc * h2 - ss * g2, cc * h3 - ss * g3)


@njit(cache=True)
def _reverse_lanes(state, g, bit, tab, dtab, d, io):
    """Reverse :func:`_rotate_lanes`: ``d[io[lane], pair, lane] += dL/dAngle``; ``g`` <- transpose."""
    i0, i1, i2, i3 = uint64(io[0]), uint64(io[1]), uint64(io[2]), uint64(io[3])
    for k in range(uint64(g.shape[0] // 2)):
        x0 = _pair(k, bit)
        x1 = x0 | bit
        c0, c1, c2, c3 = _by_lane(tab, x0, 0, i0, i1, i2, i3)
        s0, s1, s2, s3 = _by_lane(tab, x0, 1, i0, i1, i2, i3)
        e0, e1, e2, e3 = _by_lane(dtab, x0, 0, i0, i1, i2, i3)
        f0, f1, f2, f3 = _by_lane(dtab, x0, 1, i0, i1, i2, i3)
        a0, a1, a2, a3 = _row(state, x0)
        b0, b1, b2, b3 = _row(state, x1)
        g0, g1, g2, g3 = _row(g, x0)
        h0, h1, h2, h3 = _row(g, x1)
        d[i0, x0, 0] += (g0 * a0 + h0 * b0) * e0 + (h0 * a0 - g0 * b0) * f0
        d[i1, x0, 1] += (g1 * a1 + h1 * b1) * e1 + (h1 * a1 - g1 * b1) * f1
        d[i2, x0, 2] += (g2 * a2 + h2 * b2) * e2 + (h2 * a2 - g2 * b2) * f2
        d[i3, x0, 3] += (g3 * a3 + h3 * b3) * e3 + (h3 * a3 - g3 * b3) * f3
        _set_row(g, x0, c0 * g0 + s0 * h0, c1 * g1 + s1 * h1, c2 * g2 + s2 * h2, c3 * g3 + s3 * h3)
        _set_row(g, x1, c0 * h0 - s0 * g0, c1 * h1 - s1 * g1, c2 * h2 - s2 * g2, c3 * h3 - s3 * g3)


@njit(cache=True)
def _reverse_uniform(state, g, bit, c, s, d):
    """Reverse :func:`_rotate_uniform`; ``d[lane] +=`` dL/d(angle) of the work-stage RY."""
    d0 = d1 = d2 = d3 = 0.0
    for k in range(uint64(g.shape[0] // 2)):
        x0 = _pair(k, bit)
        x1 = x0 | bit
        a0, a1, a2, a3 = _row(state, x0)
        b0, b1, b2, b3 = _row(state, x1)
        g0, g1, g2, g3 = _row(g, x0)
        h0, h1, h2, h3 = _row(g, x1)
        d0 += h0 * (c * a0 - s * b0) - g0 * (s * a0 + c * b0)
        d1 += h1 * (c * a1 - s * b1) - g1 * (s * a1 + c * b1)
        d2 += h2 * (c * a2 - s * b2) - g2 * (s * a2 + c * b2)
        d3 += h3 * (c * a3 - s * b3) - g3 * (s * a3 + c * b3)
        _set_row(g, x0, c * g0 + s * h0, c * g1 + s * h1, c * g2 + s * h2, c * g3 + s * h3)
        _set_row(g, x1, c * h0 - s * g0, c * h1 - s * g1, c * h2 - s * g2, c * h3 - s * g3)
    d[0] += 0.5 * d0
    d[1] += 0.5 * d1
    d[2] += 0.5 * d2
    d[3] += 0.5 * d3


@njit(cache=True)
def _backward_step(g_full, g_ws, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                   d_ws, d_unitary):
    """Reverse one step's neurons: ``g_full`` (gradient at the step's end) -> ``g_ws`` (start)."""
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab, ucos, usin = tabs
    dctab, dstab, dwtab = dtabs
    for op in range(out_neurons.shape[0] - 1, -1, -1):
        k = out_neurons[op]
        _reverse_shared(full_saved[op], g_full, uint64(1) << uint64(out_lanes[op]), ctab[k], stab[k],
                        dctab[k], dstab[k], d_full[k])
    for w in range(g_ws.shape[0]):
        for lane in range(LANES):
            g_ws[w, lane] = g_full[w << num_in, lane]
    for op in range(kinds.shape[0] - 1, -1, -1):
        k = indices[op]
        bit = uint64(1) << uint64(lanes[op])
        if kinds[op] == 0:
            _reverse_uniform(ws_saved[op], g_ws, bit, ucos[k], usin[k], d_unitary[k])
        else:
            _reverse_lanes(ws_saved[op], g_ws, bit, wtab[k], dwtab[k], d_ws[k], io)


@njit(cache=True)
def _block_rows(d_full, d_ws, d_unitary, num_in, layout, alive, rows, b0):
    """Each live lane's angle gradients per pattern -> its flat parameter gradient ``rows[b0 + lane]``.

    ``d_ws[k, io, w]`` (workspace neurons) is first added onto the full-pattern ``d_full[k, x]``;
    then ``dW_S = sum over patterns x that contain S of dTheta[x]`` (a superset sum), and the bias
    gets the sum over every pattern, which the superset sum leaves at the empty set. All four lanes
    go through each addition together (``d_full`` is changed in place).
    """
    masks, mask_offsets, bias_index, unitary_index = layout
    size = d_full.shape[1]
    for k in range(d_full.shape[0]):
        g = d_full[k]
        for io in range(d_ws.shape[1]):
            for w in range(d_ws.shape[2]):
                for lane in range(LANES):
                    g[(w << num_in) | io, lane] += d_ws[k, io, w, lane]
        bit = 1
        while bit < size:
            for hi in range(0, size, 2 * bit):
                for x in range(hi, hi + bit):
                    for lane in range(LANES):
                        g[x, lane] += g[x + bit, lane]
            bit *= 2
        first = bias_index[k] - (mask_offsets[k + 1] - mask_offsets[k])  # weights precede the bias
        for lane in range(LANES):
            if alive[lane]:
                row = rows[b0 + lane]
                for i in range(mask_offsets[k], mask_offsets[k + 1]):
                    row[first + i - mask_offsets[k]] = g[masks[i], lane]
                row[bias_index[k]] = g[0, lane]
    for lane in range(LANES):
        if alive[lane]:
            for u in range(d_unitary.shape[0]):
                rows[b0 + lane, unitary_index[u]] = d_unitary[u, lane]


@njit(cache=True)
def _step_gradient(full, q, z, y, gp, probs_t, g_next, g_full, lane, num_in):
    """One lane's gradient at the end of a step's neurons from the loss (``gp``) and the next step
    (``g_next``), through ``p = q / z`` with ``q[y'] = sum_w full[w, y']**2``, and through the
    postselected ``psi_next = full[:, y] / sqrt(q[y])``."""
    num_outcomes = q.shape[0]
    dot = 0.0
    for k in range(num_outcomes):
        dot += gp[k] * probs_t[k]
    root = math.sqrt(q[y, lane])
    proj = 0.0
    for w in range(g_next.shape[0]):
        proj += full[(w << num_in) | y, lane] / root * g_next[w, lane]
    for x in range(full.shape[0]):
        g_full[x, lane] = 2.0 * full[x, lane] * ((gp[x & (num_outcomes - 1)] - dot) / z[lane])
    for w in range(g_next.shape[0]):
        x = (w << num_in) | y
        g_full[x, lane] += (g_next[w, lane] - full[x, lane] / root * proj) / root


@njit(cache=True)
def _block_gradient(b0, bufs, io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in,
                    forced, probs, acceptance, loss_rows, grad_rows, status, status_step):
    """Teacher-forced forward pass and reverse pass of the block starting at sequence ``b0``."""
    (psi, full, q, z, io, alive, starts, ws_saved, full_saved, d_full, d_ws, d_unitary, g_next,
     g_full, gp, loss) = bufs
    batch, steps = io_inputs.shape
    _start_block(psi, b0, batch, alive)
    for t in range(steps):  # teacher-forced forward pass, keeping each step's start
        _copy(starts[t], psi)
        _advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, forced[0], forced[1], ops, tabs,
                 num_in, probs, forced[2], forced[3], acceptance, status, status_step)
    d_full[:] = 0.0
    d_ws[:] = 0.0
    d_unitary[:] = 0.0
    g_next[:] = 0.0
    loss[:] = 0.0
    for t in range(steps - 1, -1, -1):
        _block_io(io_inputs, b0, batch, t, alive, io)
        _copy(ws_saved[0], starts[t])  # recompute the step from its start, keeping its states
        _step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved, True)
        _block_weights(full, q, z, num_in)
        g_full[:] = 0.0
        for lane in range(LANES):
            if not alive[lane]:
                continue
            b = b0 + lane
            y = io_targets[b, t]
            gp[lane] = 0.0
            if scored[t]:
                loss[lane] += _loss_terms(probs[b, t], y, gp[lane])
            _step_gradient(full, q, z, y, gp[lane], probs[b, t], g_next, g_full, lane, num_in)
        _backward_step(g_full, g_next, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                       d_ws, d_unitary)
    for lane in range(LANES):
        if alive[lane]:
            loss_rows[b0 + lane] = loss[lane]
    _block_rows(d_full, d_ws, d_unitary, num_in, layout, alive, grad_rows, b0)


@njit(cache=True, parallel=True)
def loss_and_gradient(io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in, num_ws,
                      chunks, probs, acceptance, loss_rows, grad_rows, status, status_step):
    """Teacher-forced forward pass and reverse-mode gradient, a block of sequences at a time.

    ``loss_rows[b]`` is the sum over scored steps of ``logsumexp(p) - p[target]`` and
    ``grad_rows[b]`` its gradient (neither divided by the count nor offset). The blocks are cut
    into ``chunks`` runs (one per thread), each with its own buffers; the forward pass keeps each
    step's start state (``T * 2**W * 4`` numbers a block) and the reverse pass recomputes the step
    from it. Each sequence's row depends on nothing but that sequence, so neither the chunks nor
    the threads change a bit of the result.
    """
    batch, steps = io_inputs.shape
    blocks = (batch + LANES - 1) // LANES
    num_outcomes = 1 << num_in
    n_ws = 1 << num_ws
    n_full = 1 << (num_ws + num_in)
    dtype = tabs[0].dtype
    n_neurons = tabs[0].shape[0]
    n_unitary = tabs[3].shape[0]
    # teacher forcing: no step drawn; outcomes and their probabilities are the targets' (not kept)
    forced = (np.zeros((batch, steps), np.bool_), np.zeros((batch, steps)), np.zeros((batch, steps), np.int64),
              np.zeros((batch, steps)))
    for c in prange(chunks):
        bufs = (
            np.empty((n_ws, LANES), dtype), np.empty((n_full, LANES), dtype),
            np.empty((num_outcomes, LANES), dtype), np.empty(LANES, np.float64),
            np.zeros(LANES, np.int64), np.zeros(LANES, np.bool_),
            np.empty((steps, n_ws, LANES), dtype), np.empty((max(ops[0].shape[0], 1), n_ws, LANES), dtype),
            np.empty((max(ops[3].shape[0], 1), n_full, LANES), dtype),
            np.empty((n_neurons, n_full, LANES), np.float64),
            np.empty((n_neurons, num_outcomes, n_ws, LANES), np.float64),
            np.empty((n_unitary, LANES), np.float64),
            np.empty((n_ws, LANES), dtype), np.empty((n_full, LANES), dtype),
            np.empty((LANES, num_outcomes), np.float64), np.empty(LANES, np.float64),
        )  # fmt: skip
        for block in range(c * blocks // chunks, (c + 1) * blocks // chunks):
            _block_gradient(block * LANES, bufs, io_inputs, io_targets, scored, ops, tabs, dtabs,
                            layout, num_in, forced, probs, acceptance, loss_rows, grad_rows, status,
                            status_step)


@njit(cache=True)
def sum_rows(rows):
    """``rows.sum(axis=0)`` added strictly in row order (independent of threads and shards)."""
    total = np.zeros(rows.shape[1], np.float64)
    for b in range(rows.shape[0]):
        for i in range(rows.shape[1]):
            total[i] += rows[b, i]
    return total
