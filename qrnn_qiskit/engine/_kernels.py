"""Compiled (numba) kernels of the exact engine: one sequence per loop iteration, threaded.

These compute what :mod:`qrnn_qiskit.engine.exact`'s numpy path computes, one sequence at a time
and with every state small enough for the cache: the workspace state of one sequence has
``2**W`` amplitudes (256 for the MNIST models), the full state ``2**(I+W)``. The numpy path works
on the whole batch at once and is memory-bound (a step streams ``B * 2**W`` numbers per neuron
through three elementwise passes and a matrix product that selects each sequence's angle table);
here a neuron is one loop over amplitude pairs that reads the sequence's angle table in place.
Measured on the MNIST 0/1 model (``benchmarks/engine.py``): see the README's performance table.

Why numba and not a C extension: it installs as a wheel on every platform the package supports,
needs no compiler on the user's machine, caches its machine code on disk (``cache=True``), and
keeps the kernels readable Python beside the numpy path they are tested against.

Conventions are those of the numpy path: the full pattern index is ``ws << I | io`` with lane
``q`` at bit ``q``; io values are bit-reversed tokens (io lane 0 = the token's most significant
bit). Every table is indexed by the full pattern. Op arrays describe one step's input and work
stages: ``kind`` 0 = a work-stage RY on workspace lane ``lane`` with angle number ``index``,
1 = a neuron ``index`` on workspace lane ``lane``; output neurons come as (neuron, io lane).

Gradients are accumulated per sequence into rows of ``(B, P)`` and summed afterwards in sequence
order, so results do not depend on the number of threads, and a batch split into shards whose rows
are concatenated gives the same sum as the whole batch.
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


# Pair loops index with unsigned integers: numba's signed indexing adds a negative-index check per
# access that keeps LLVM from optimising the loop (measured 2-6 ns per pair against about 1).
@njit(cache=True)
def _pair(k, bit):
    """The ``k``-th index whose lane bit ``bit`` is 0 (a zero bit inserted into ``k``)."""
    low = bit - uint64(1)
    return ((k & ~low) << uint64(1)) | (k & low)


@njit(cache=True)
def _rotate_lane(psi, lane, c, s):
    """``(a, b) <- (c a - s b, s a + c b)`` on every amplitude pair of ``lane`` (scalars)."""
    bit = uint64(1) << uint64(lane)
    for k in range(uint64(psi.shape[0] // 2)):
        w0 = _pair(k, bit)
        w1 = w0 | bit
        a = psi[w0]
        b = psi[w1]
        psi[w0] = c * a - s * b
        psi[w1] = s * a + c * b


@njit(cache=True)
def _rotate_lane_table(psi, lane, c, s):
    """The same with a cosine and sine per pair, read at the pair's first index."""
    bit = uint64(1) << uint64(lane)
    for k in range(uint64(psi.shape[0] // 2)):
        w0 = _pair(k, bit)
        w1 = w0 | bit
        a = psi[w0]
        b = psi[w1]
        psi[w0] = c[w0] * a - s[w0] * b
        psi[w1] = s[w0] * a + c[w0] * b


@njit(cache=True)
def _apply_ws_ops(psi, io, kinds, lanes, indices, wtab_c, wtab_s, ucos, usin, saved, save):
    """Input and work stages on one sequence's workspace state ``psi`` (2**W), in place.

    ``wtab_c[k, io]`` is neuron ``k``'s cosine table over workspace patterns for io pattern ``io``.
    """
    for op in range(kinds.shape[0]):
        if save:
            saved[op, :] = psi
        k = indices[op]
        if kinds[op] == 0:
            _rotate_lane(psi, lanes[op], ucos[k], usin[k])
        else:
            _rotate_lane_table(psi, lanes[op], wtab_c[k, io], wtab_s[k, io])


@njit(cache=True)
def _apply_out_ops(full, out_neurons, out_lanes, ctab, stab, saved, save):
    """Output stage on one sequence's full state ``full`` (2**n), in place."""
    for op in range(out_neurons.shape[0]):
        if save:
            saved[op, :] = full
        k = out_neurons[op]
        _rotate_lane_table(full, out_lanes[op], ctab[k], stab[k])


@njit(cache=True)
def _step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved, save):
    """One cell step: ``full`` <- the unnormalised state after every neuron (psi is changed)."""
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab_c, wtab_s, ucos, usin = tabs
    _apply_ws_ops(psi, io, kinds, lanes, indices, wtab_c, wtab_s, ucos, usin, ws_saved, save)
    full[:] = 0.0
    for w in range(psi.shape[0]):
        full[w << num_in] = psi[w]
    _apply_out_ops(full, out_neurons, out_lanes, ctab, stab, full_saved, save)


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


@njit(cache=True, parallel=True)
def forward(io_inputs, io_targets, draw, uniforms, ops, tabs, num_in, num_ws,
            probs, outcomes, taken, acceptance, status, status_step):
    """Forward pass of ``B`` sequences (outputs in io order, written in place)."""
    batch, steps = io_inputs.shape
    num_outcomes = 1 << num_in
    dtype = tabs[0].dtype
    for b in prange(batch):
        psi = np.zeros(1 << num_ws, dtype)
        full = np.empty(1 << (num_ws + num_in), dtype)
        q = np.empty(num_outcomes, dtype)
        dummy = np.empty((1, 1), dtype)
        psi[0] = 1.0
        for t in range(steps):
            _step(psi, full, io_inputs[b, t], ops, tabs, num_in, dummy, dummy, False)
            z = _outcome_weights(full, q, num_in)
            if z <= _TINY:
                status[b] = NEURONS_VANISH
                status_step[b] = t
                break
            for y in range(num_outcomes):
                probs[b, t, y] = q[y] / z
            if draw[b, t]:
                y = _draw(probs[b, t], uniforms[b, t])
            else:
                y = io_targets[b, t]
            if q[y] <= _TINY:
                status[b] = OUTCOME_IMPOSSIBLE
                status_step[b] = t
                outcomes[b, t] = y
                break
            root = math.sqrt(q[y])
            for w in range(psi.shape[0]):
                psi[w] = full[(w << num_in) | y] / root
            outcomes[b, t] = y
            taken[b, t] = probs[b, t, y]
            acceptance[b, t] = z


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
# the same functions for the device), so both paths reduce in the same order.
_outcome_weights = njit(cache=True)(outcome_weights)
_draw = njit(cache=True)(draw)
_loss_terms = njit(cache=True)(loss_terms)


@njit(cache=True)
def _reverse_lane(state, g, lane, c, s, dc, ds, d_angle):
    """Reverse ``_rotate_lane_table``: ``d_angle[pair] += dL/dAngle``; ``g`` <- transpose map."""
    bit = uint64(1) << uint64(lane)
    for k in range(uint64(g.shape[0] // 2)):
        x0 = _pair(k, bit)
        x1 = x0 | bit
        a = state[x0]
        b = state[x1]
        ga = g[x0]
        gb = g[x1]
        d_angle[x0] += (ga * a + gb * b) * dc[x0] + (gb * a - ga * b) * ds[x0]
        g[x0] = c[x0] * ga + s[x0] * gb
        g[x1] = c[x0] * gb - s[x0] * ga


@njit(cache=True)
def _reverse_unitary(state, g, lane, c, s):
    """Reverse ``_rotate_lane`` and return dL/d(angle) of the work-stage RY."""
    bit = uint64(1) << uint64(lane)
    d = 0.0
    for k in range(uint64(g.shape[0] // 2)):
        w0 = _pair(k, bit)
        w1 = w0 | bit
        a = state[w0]
        b = state[w1]
        ga = g[w0]
        gb = g[w1]
        d += gb * (c * a - s * b) - ga * (s * a + c * b)
        g[w0] = c * ga + s * gb
        g[w1] = c * gb - s * ga
    return 0.5 * d


@njit(cache=True)
def _backward_step(g_full, g_ws, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                   d_ws, d_unitary):
    """Reverse one step's neurons: ``g_full`` (gradient at the step's end) -> ``g_ws`` (start)."""
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab_c, wtab_s, ucos, usin = tabs
    dctab, dstab, dwtab_c, dwtab_s = dtabs
    for op in range(out_neurons.shape[0] - 1, -1, -1):
        k = out_neurons[op]
        _reverse_lane(full_saved[op], g_full, out_lanes[op], ctab[k], stab[k], dctab[k],
                      dstab[k], d_full[k])
    for w in range(g_ws.shape[0]):
        g_ws[w] = g_full[w << num_in]
    for op in range(kinds.shape[0] - 1, -1, -1):
        k = indices[op]
        if kinds[op] == 0:
            d_unitary[k] += _reverse_unitary(ws_saved[op], g_ws, lanes[op], ucos[k], usin[k])
        else:
            _reverse_lane(ws_saved[op], g_ws, lanes[op], wtab_c[k, io], wtab_s[k, io], dwtab_c[k, io],
                          dwtab_s[k, io], d_ws[k, io])


@njit(cache=True)
def _parameter_row(d_full, d_ws, d_unitary, num_in, layout, row):
    """Per-sequence angle gradients per pattern -> the flat parameter gradient ``row``.

    ``d_ws[k, io, w]`` (workspace neurons) is first added onto the full-pattern ``d_full[k, x]``;
    then ``dW_S = sum over patterns x that contain S of dTheta[x]`` (a superset sum), and the bias
    gets the sum over every pattern, which the superset sum leaves at the empty set.
    """
    masks, mask_offsets, bias_index, unitary_index = layout
    size = d_full.shape[1]
    for k in range(d_full.shape[0]):
        g = d_full[k]
        for io in range(d_ws.shape[1]):
            for w in range(d_ws.shape[2]):
                g[(w << num_in) | io] += d_ws[k, io, w]
        bit = 1
        while bit < size:
            for hi in range(0, size, 2 * bit):
                for x in range(hi, hi + bit):
                    g[x] += g[x + bit]
            bit *= 2
        first = bias_index[k] - (mask_offsets[k + 1] - mask_offsets[k])  # weights precede the bias
        for i in range(mask_offsets[k], mask_offsets[k + 1]):
            row[first + i - mask_offsets[k]] = g[masks[i]]
        row[bias_index[k]] = g[0]
    for u in range(d_unitary.shape[0]):
        row[unitary_index[u]] = d_unitary[u]


@njit(cache=True)
def _step_gradient(full, q, z, y, gp, probs_t, g_next, g_full, num_in):
    """Gradient at the end of a step's neurons from the loss (``gp``) and the next step (``g_next``).

    Through ``p = q / z`` with ``q[y'] = sum_w full[w, y']**2``, and through the postselected
    ``psi_next = full[:, y] / sqrt(q[y])``.
    """
    num_outcomes = q.shape[0]
    dot = 0.0
    for k in range(num_outcomes):
        dot += gp[k] * probs_t[k]
    root = math.sqrt(q[y])
    proj = 0.0
    for w in range(g_next.shape[0]):
        proj += full[(w << num_in) | y] / root * g_next[w]
    for x in range(full.shape[0]):
        g_full[x] = 2.0 * full[x] * ((gp[x & (num_outcomes - 1)] - dot) / z)
    for w in range(g_next.shape[0]):
        x = (w << num_in) | y
        g_full[x] += (g_next[w] - full[x] / root * proj) / root


@njit(cache=True)
def _teacher_forced(psi, q, saved, io_inputs, io_targets, ops, tabs, num_in, probs, acceptance):
    """Forward pass of one sequence under teacher forcing, keeping what the reverse pass needs.

    ``saved = (starts, fulls, ws_saved, full_saved, keep_all)``: with ``keep_all`` every step's
    intermediate states are kept (``ws_saved[t]``, ``full_saved[t]``, ``fulls[t]``: the end of the
    step's neurons); otherwise only each step's start (``starts[t]``), and the reverse pass
    recomputes the step. Returns ``-1`` on success, else ``10 * step + status``.
    """
    starts, fulls, ws_saved, full_saved, keep_all = saved
    for t in range(io_inputs.shape[0]):
        slot = t if keep_all else 0
        if not keep_all:
            starts[t] = psi
        full = fulls[slot]
        _step(psi, full, io_inputs[t], ops, tabs, num_in, ws_saved[slot], full_saved[slot], keep_all)
        z = _outcome_weights(full, q, num_in)
        y = io_targets[t]
        if z <= _TINY:
            return 10 * t + NEURONS_VANISH
        if q[y] <= _TINY:
            return 10 * t + OUTCOME_IMPOSSIBLE
        for k in range(q.shape[0]):
            probs[t, k] = q[k] / z
        acceptance[t] = z
        root = math.sqrt(q[y])
        for w in range(psi.shape[0]):
            psi[w] = full[(w << num_in) | y] / root
    return -1


@njit(cache=True, parallel=True)
def loss_and_gradient(io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in, num_ws,
                      keep_all, chunks, probs, acceptance, loss_rows, grad_rows, status,
                      status_step):
    """Teacher-forced forward pass and reverse-mode gradient, one sequence at a time.

    ``loss_rows[b]`` is the sum over scored steps of ``logsumexp(p) - p[target]`` and
    ``grad_rows[b]`` its gradient (neither divided by the count nor offset). The batch is cut into
    ``chunks`` runs of consecutive sequences (one per thread), each with its own buffers: with
    ``keep_all`` every intermediate state of the sequence's steps (no recomputation), otherwise
    only each step's start state (``T * 2**W`` numbers) and a recomputation in the reverse pass.
    Each sequence's row depends on nothing but that sequence, so neither the chunks nor the
    threads change a bit of the result.
    """
    batch, steps = io_inputs.shape
    num_outcomes = 1 << num_in
    n_ws = 1 << num_ws
    n_full = 1 << (num_ws + num_in)
    dtype = tabs[0].dtype
    slots = steps if keep_all else 1
    for c in prange(chunks):
        starts = np.empty((1 if keep_all else steps, n_ws), dtype)
        fulls = np.empty((slots, n_full), dtype)
        ws_saved = np.empty((slots, ops[0].shape[0], n_ws), dtype)
        full_saved = np.empty((slots, ops[3].shape[0], n_full), dtype)
        saved = (starts, fulls, ws_saved, full_saved, keep_all)
        psi = np.empty(n_ws, dtype)
        q = np.empty(num_outcomes, dtype)
        d_full = np.empty(tabs[0].shape, np.float64)
        d_ws = np.empty(tabs[2].shape, np.float64)
        d_unitary = np.empty(tabs[4].shape[0], np.float64)
        g_next = np.empty(n_ws, dtype)
        g_full = np.empty(n_full, dtype)
        gp = np.empty(num_outcomes, np.float64)
        for b in range(c * batch // chunks, (c + 1) * batch // chunks):
            psi[:] = 0.0
            psi[0] = 1.0
            code = _teacher_forced(psi, q, saved, io_inputs[b], io_targets[b], ops, tabs, num_in,
                                   probs[b], acceptance[b])
            if code >= 0:
                status[b] = code % 10
                status_step[b] = code // 10
                continue
            d_full[:] = 0.0
            d_ws[:] = 0.0
            d_unitary[:] = 0.0
            g_next[:] = 0.0
            loss = 0.0
            for t in range(steps - 1, -1, -1):
                slot = t if keep_all else 0
                io = io_inputs[b, t]
                full = fulls[slot]
                if not keep_all:  # recompute the step from its saved start
                    psi[:] = starts[t]
                    _step(psi, full, io, ops, tabs, num_in, ws_saved[0], full_saved[0], True)
                z = _outcome_weights(full, q, num_in)
                y = io_targets[b, t]
                gp[:] = 0.0
                if scored[t]:
                    loss += _loss_terms(probs[b, t], y, gp)
                _step_gradient(full, q, z, y, gp, probs[b, t], g_next, g_full, num_in)
                _backward_step(g_full, g_next, ws_saved[slot], full_saved[slot], io, ops, tabs,
                               dtabs, num_in, d_full, d_ws, d_unitary)
            loss_rows[b] = loss
            _parameter_row(d_full, d_ws, d_unitary, num_in, layout, grad_rows[b])


@njit(cache=True)
def sum_rows(rows):
    """``rows.sum(axis=0)`` added strictly in row order (independent of threads and shards)."""
    total = np.zeros(rows.shape[1], np.float64)
    for b in range(rows.shape[0]):
        for i in range(rows.shape[1]):
            total[i] += rows[b, i]
    return total
