"""Compiled (numba) kernels of the exact engine's reverse pass: loss and gradient rows per sequence.

A block of eight sequences (:mod:`qrnn_qiskit.engine.backends.cpu_kernels`) is run forward under
teacher forcing, keeping each step's start state, and then reversed step by step: each step is
recomputed from its start with its intermediate states kept, and every rotation is reversed in
turn, its angle gradient added per pattern and lane. Gradients are accumulated per sequence into
rows of ``(B, P)`` and summed afterwards in sequence order (:func:`sum_rows`), so results do not
depend on the number of threads, and a batch split into shards whose rows are concatenated gives
the same sum as the whole batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from qrnn_qiskit.engine.backends.cpu_kernels import (
    LANES,
    advance,
    block_io,
    block_weights,
    by_lane,
    copy_into,
    inner,
    lane_indices,
    pair,
    row,
    set_row,
    start_block,
    step,
)
from qrnn_qiskit.engine.backends.cpu_pick import pick8
from qrnn_qiskit.engine.backends.reductions import loss_terms

__all__ = ["loss_and_gradient", "sum_rows"]

loss_terms_kernel = inner(loss_terms)


@inner
def angle_term(g, h, a, b, dc, ds):
    """One lane's ``dL/dAngle`` of a pair rotation: ``(g a + h b) dC + (h a - g b) dS``."""
    return (g * a + h * b) * dc + (h * a - g * b) * ds


@inner
def reverse_shared(state, g, bit, c, s, dc, ds, d):
    """Reverse :func:`rotate_shared`: ``d[pair, lane] += dL/dAngle``; ``g`` <- transpose map."""
    for k in range(uint64(g.shape[0] // 2)):
        x0 = pair(k, bit)
        x1 = x0 | bit
        cc, ss, dcc, dss = c[x0], s[x0], dc[x0], ds[x0]
        a0, a1, a2, a3, a4, a5, a6, a7 = row(state, x0)
        b0, b1, b2, b3, b4, b5, b6, b7 = row(state, x1)
        g0, g1, g2, g3, g4, g5, g6, g7 = row(g, x0)
        h0, h1, h2, h3, h4, h5, h6, h7 = row(g, x1)
        q0, q1, q2, q3, q4, q5, q6, q7 = row(d, x0)
        set_row(d, x0, q0 + angle_term(g0, h0, a0, b0, dcc, dss),
                q1 + angle_term(g1, h1, a1, b1, dcc, dss),
                q2 + angle_term(g2, h2, a2, b2, dcc, dss),
                q3 + angle_term(g3, h3, a3, b3, dcc, dss),
                q4 + angle_term(g4, h4, a4, b4, dcc, dss),
                q5 + angle_term(g5, h5, a5, b5, dcc, dss),
                q6 + angle_term(g6, h6, a6, b6, dcc, dss),
                q7 + angle_term(g7, h7, a7, b7, dcc, dss))
        set_row(g, x0, cc * g0 + ss * h0, cc * g1 + ss * h1, cc * g2 + ss * h2, cc * g3 + ss * h3,
                cc * g4 + ss * h4, cc * g5 + ss * h5, cc * g6 + ss * h6, cc * g7 + ss * h7)
        set_row(g, x1, cc * h0 - ss * g0, cc * h1 - ss * g1, cc * h2 - ss * g2, cc * h3 - ss * g3,
                cc * h4 - ss * g4, cc * h5 - ss * g5, cc * h6 - ss * g6, cc * h7 - ss * g7)


@inner
def reverse_lanes(state, g, bit, tab, dtab, d, io, fast):
    """Reverse :func:`rotate_lanes`: ``d[pair, io[lane], lane] += dL/dAngle``; ``g`` <- transpose
    (the table entries read as there: picked by permute with ``fast``, else one by one)."""
    rows, drows = tab.reshape(tab.shape[0], -1), dtab.reshape(dtab.shape[0], -1)
    cos_at, sin_at = lane_indices(io, uint64(0)), lane_indices(io, uint64(tab.shape[2]))
    i0, i1, i2, i3, i4, i5, i6, i7 = cos_at
    for k in range(uint64(g.shape[0] // 2)):
        x0 = pair(k, bit)
        x1 = x0 | bit
        if fast:
            entries, derivatives = row(rows, x0), row(drows, x0)
            c0, c1, c2, c3, c4, c5, c6, c7 = pick8(entries, cos_at)
            s0, s1, s2, s3, s4, s5, s6, s7 = pick8(entries, sin_at)
            e0, e1, e2, e3, e4, e5, e6, e7 = pick8(derivatives, cos_at)
            f0, f1, f2, f3, f4, f5, f6, f7 = pick8(derivatives, sin_at)
        else:
            c0, c1, c2, c3, c4, c5, c6, c7 = by_lane(tab, x0, 0, i0, i1, i2, i3, i4, i5, i6, i7)
            s0, s1, s2, s3, s4, s5, s6, s7 = by_lane(tab, x0, 1, i0, i1, i2, i3, i4, i5, i6, i7)
            e0, e1, e2, e3, e4, e5, e6, e7 = by_lane(dtab, x0, 0, i0, i1, i2, i3, i4, i5, i6, i7)
            f0, f1, f2, f3, f4, f5, f6, f7 = by_lane(dtab, x0, 1, i0, i1, i2, i3, i4, i5, i6, i7)
        a0, a1, a2, a3, a4, a5, a6, a7 = row(state, x0)
        b0, b1, b2, b3, b4, b5, b6, b7 = row(state, x1)
        g0, g1, g2, g3, g4, g5, g6, g7 = row(g, x0)
        h0, h1, h2, h3, h4, h5, h6, h7 = row(g, x1)
        if fast:  # one vector addition per io pattern; + 0.0 leaves the other lanes' sums as they are
            t0, t1, t2, t3, t4, t5, t6, t7 = (
                angle_term(g0, h0, a0, b0, e0, f0),
                angle_term(g1, h1, a1, b1, e1, f1),
                angle_term(g2, h2, a2, b2, e2, f2),
                angle_term(g3, h3, a3, b3, e3, f3),
                angle_term(g4, h4, a4, b4, e4, f4),
                angle_term(g5, h5, a5, b5, e5, f5),
                angle_term(g6, h6, a6, b6, e6, f6),
                angle_term(g7, h7, a7, b7, e7, f7),
            )
            sums = d[x0]
            for j in range(sums.shape[0]):
                r0, r1, r2, r3, r4, r5, r6, r7 = row(sums, j)
                set_row(sums, j, r0 + (t0 if i0 == j else 0.0), r1 + (t1 if i1 == j else 0.0),
                        r2 + (t2 if i2 == j else 0.0), r3 + (t3 if i3 == j else 0.0),
                        r4 + (t4 if i4 == j else 0.0), r5 + (t5 if i5 == j else 0.0),
                        r6 + (t6 if i6 == j else 0.0), r7 + (t7 if i7 == j else 0.0))
        else:
            d[x0, i0, 0] += angle_term(g0, h0, a0, b0, e0, f0)
            d[x0, i1, 1] += angle_term(g1, h1, a1, b1, e1, f1)
            d[x0, i2, 2] += angle_term(g2, h2, a2, b2, e2, f2)
            d[x0, i3, 3] += angle_term(g3, h3, a3, b3, e3, f3)
            d[x0, i4, 4] += angle_term(g4, h4, a4, b4, e4, f4)
            d[x0, i5, 5] += angle_term(g5, h5, a5, b5, e5, f5)
            d[x0, i6, 6] += angle_term(g6, h6, a6, b6, e6, f6)
            d[x0, i7, 7] += angle_term(g7, h7, a7, b7, e7, f7)
        set_row(g, x0, c0 * g0 + s0 * h0, c1 * g1 + s1 * h1, c2 * g2 + s2 * h2, c3 * g3 + s3 * h3,
                c4 * g4 + s4 * h4, c5 * g5 + s5 * h5, c6 * g6 + s6 * h6, c7 * g7 + s7 * h7)
        set_row(g, x1, c0 * h0 - s0 * g0, c1 * h1 - s1 * g1, c2 * h2 - s2 * g2, c3 * h3 - s3 * g3,
                c4 * h4 - s4 * g4, c5 * h5 - s5 * g5, c6 * h6 - s6 * g6, c7 * h7 - s7 * g7)


@inner
def reverse_uniform(state, g, bit, c, s, d):
    """Reverse :func:`rotate_uniform`; ``d[lane] +=`` dL/d(angle) of the work-stage RY."""
    d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = 0.0
    for k in range(uint64(g.shape[0] // 2)):
        x0 = pair(k, bit)
        x1 = x0 | bit
        a0, a1, a2, a3, a4, a5, a6, a7 = row(state, x0)
        b0, b1, b2, b3, b4, b5, b6, b7 = row(state, x1)
        g0, g1, g2, g3, g4, g5, g6, g7 = row(g, x0)
        h0, h1, h2, h3, h4, h5, h6, h7 = row(g, x1)
        d0 += h0 * (c * a0 - s * b0) - g0 * (s * a0 + c * b0)
        d1 += h1 * (c * a1 - s * b1) - g1 * (s * a1 + c * b1)
        d2 += h2 * (c * a2 - s * b2) - g2 * (s * a2 + c * b2)
        d3 += h3 * (c * a3 - s * b3) - g3 * (s * a3 + c * b3)
        d4 += h4 * (c * a4 - s * b4) - g4 * (s * a4 + c * b4)
        d5 += h5 * (c * a5 - s * b5) - g5 * (s * a5 + c * b5)
        d6 += h6 * (c * a6 - s * b6) - g6 * (s * a6 + c * b6)
        d7 += h7 * (c * a7 - s * b7) - g7 * (s * a7 + c * b7)
        set_row(g, x0, c * g0 + s * h0, c * g1 + s * h1, c * g2 + s * h2, c * g3 + s * h3, c * g4 + s * h4,
                c * g5 + s * h5, c * g6 + s * h6, c * g7 + s * h7)
        set_row(g, x1, c * h0 - s * g0, c * h1 - s * g1, c * h2 - s * g2, c * h3 - s * g3, c * h4 - s * g4,
                c * h5 - s * g5, c * h6 - s * g6, c * h7 - s * g7)
    d[0] += 0.5 * d0
    d[1] += 0.5 * d1
    d[2] += 0.5 * d2
    d[3] += 0.5 * d3
    d[4] += 0.5 * d4
    d[5] += 0.5 * d5
    d[6] += 0.5 * d6
    d[7] += 0.5 * d7


@inner
def backward_step(g_full, g_ws, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                   d_ws, d_unitary):
    """Reverse one step's neurons: ``g_full`` (gradient at the step's end) -> ``g_ws`` (start)."""
    kinds, lanes, indices, out_neurons, out_lanes, fast = ops
    ctab, stab, wtab, ucos, usin = tabs
    dctab, dstab, dwtab = dtabs
    for op in range(out_neurons.shape[0] - 1, -1, -1):
        k = out_neurons[op]
        reverse_shared(full_saved[op], g_full, uint64(1) << uint64(out_lanes[op]), ctab[k], stab[k],
                        dctab[k], dstab[k], d_full[k])
    for w in range(g_ws.shape[0]):
        for lane in range(LANES):
            g_ws[w, lane] = g_full[w << num_in, lane]
    for op in range(kinds.shape[0] - 1, -1, -1):
        k = indices[op]
        bit = uint64(1) << uint64(lanes[op])
        if kinds[op] == 0:
            reverse_uniform(ws_saved[op], g_ws, bit, ucos[k], usin[k], d_unitary[k])
        else:
            reverse_lanes(ws_saved[op], g_ws, bit, wtab[k], dwtab[k], d_ws[k], io, fast[0] != 0)


@inner
def block_rows(d_full, d_ws, d_unitary, num_in, layout, alive, rows, b0):
    """Each live lane's angle gradients per pattern -> its flat parameter gradient ``rows[b0 + lane]``.

    ``d_ws[k, w, io]`` (workspace neurons) is first added onto the full-pattern ``d_full[k, x]``;
    then ``dW_S = sum over patterns x that contain S of dTheta[x]`` (a superset sum), and the bias
    gets the sum over every pattern, which the superset sum leaves at the empty set. All eight lanes
    go through each addition together (``d_full`` is changed in place).
    """
    masks, mask_offsets, bias_index, unitary_index = layout
    size = d_full.shape[1]
    for k in range(d_full.shape[0]):
        g = d_full[k]
        for w in range(d_ws.shape[1]):
            for io in range(d_ws.shape[2]):
                for lane in range(LANES):
                    g[(w << num_in) | io, lane] += d_ws[k, w, io, lane]
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


@inner
def outcome_factors(z, gp, probs_t, factor, lane):
    """One lane's ``factor[y', lane] = (gp[y'] - gp . p) / z``: the loss gradient through
    ``p = q / z``, per outcome, that :func:`scale_outcomes` multiplies by ``2 full``."""
    dot = 0.0
    for k in range(factor.shape[0]):
        dot += gp[k] * probs_t[k]
    for k in range(factor.shape[0]):
        factor[k, lane] = (gp[k] - dot) / z[lane]


@inner
def scale_outcomes(full, factor, g_full):
    """``g_full[x, lane] = 2 full[x, lane] factor[y(x), lane]`` for every pattern and lane: the
    gradient through ``q[y'] = sum_w full[w, y']**2``, all lanes at once (a lane-by-lane loop
    strode through the block a cache line an amplitude)."""
    mask = factor.shape[0] - 1
    for x in range(full.shape[0]):
        y = x & mask
        for lane in range(LANES):
            g_full[x, lane] = 2.0 * full[x, lane] * factor[y, lane]


@inner
def add_next_step(full, q, y, g_next, g_full, lane, num_in):
    """One lane's gradient from the next step (``g_next``) through the postselected
    ``psi_next = full[:, y] / sqrt(q[y])``, added onto ``g_full``."""
    root = math.sqrt(q[y, lane])
    proj = 0.0
    for w in range(g_next.shape[0]):
        proj += full[(w << num_in) | y, lane] / root * g_next[w, lane]
    for w in range(g_next.shape[0]):
        x = (w << num_in) | y
        g_full[x, lane] += (g_next[w, lane] - full[x, lane] / root * proj) / root


@inner
def block_gradient(b0, bufs, io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in,
                    forced, probs, acceptance, loss_rows, grad_rows, status, status_step):
    """Teacher-forced forward pass and reverse pass of the block starting at sequence ``b0``."""
    (psi, full, q, z, io, alive, starts, ws_saved, full_saved, d_full, d_ws, d_unitary, g_next,
     g_full, gp, loss, factor) = bufs
    batch, steps = io_inputs.shape
    start_block(psi, b0, batch, alive)
    for t in range(steps):  # teacher-forced forward pass, keeping each step's start
        copy_into(starts[t], psi)
        advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, forced[0], forced[1], ops, tabs,
                 num_in, probs, forced[2], forced[3], acceptance, status, status_step)
    d_full[:] = 0.0
    d_ws[:] = 0.0
    d_unitary[:] = 0.0
    g_next[:] = 0.0
    loss[:] = 0.0
    for t in range(steps - 1, -1, -1):
        block_io(io_inputs, b0, batch, t, alive, io)
        copy_into(ws_saved[0], starts[t])  # recompute the step from its start, keeping its states
        step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved)
        block_weights(full, q, z, num_in)
        # the gradient at the end of the step's neurons: from the loss, then from the next step
        for lane in range(LANES):
            factor[:, lane] = 0.0
            if alive[lane]:
                b = b0 + lane
                gp[lane] = 0.0
                if scored[t]:
                    loss[lane] += loss_terms_kernel(probs[b, t], io_targets[b, t], gp[lane])
                outcome_factors(z, gp[lane], probs[b, t], factor, lane)
        scale_outcomes(full, factor, g_full)
        for lane in range(LANES):
            if alive[lane]:
                add_next_step(full, q, io_targets[b0 + lane, t], g_next, g_full, lane, num_in)
        backward_step(g_full, g_next, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                       d_ws, d_unitary)
    for lane in range(LANES):
        if alive[lane]:
            loss_rows[b0 + lane] = loss[lane]
    block_rows(d_full, d_ws, d_unitary, num_in, layout, alive, grad_rows, b0)


@njit(cache=True, nogil=True)
def loss_and_gradient(c, chunks, io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in, num_ws,
                      probs, acceptance, loss_rows, grad_rows, status, status_step):
    """Teacher-forced forward pass and reverse-mode gradient of run ``c`` of ``chunks``, a block of
    sequences at a time.

    ``loss_rows[b]`` is the sum over scored steps of ``logsumexp(p) - p[target]`` and
    ``grad_rows[b]`` its gradient (neither divided by the count nor offset). The blocks are cut
    into ``chunks`` runs (one per thread; the kernel releases the GIL), each with its own buffers;
    the forward pass keeps each step's start state (``T * 2**W * 8`` numbers a block) and the
    reverse pass recomputes the step from it. Each sequence's row depends on nothing but that
    sequence, so neither the chunks nor the threads change a bit of the result.
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
    bufs = (
        np.empty((n_ws, LANES), dtype), np.empty((n_full, LANES), dtype),
        np.empty((num_outcomes, LANES), dtype), np.empty(LANES, np.float64),
        np.zeros(LANES, np.int64), np.zeros(LANES, np.bool_),
        np.empty((steps, n_ws, LANES), dtype), np.empty((max(ops[0].shape[0], 1), n_ws, LANES), dtype),
        np.empty((max(ops[3].shape[0], 1), n_full, LANES), dtype),
        np.empty((n_neurons, n_full, LANES), np.float64),
        np.empty((n_neurons, n_ws, num_outcomes, LANES), np.float64),
        np.empty((n_unitary, LANES), np.float64),
        np.empty((n_ws, LANES), dtype), np.empty((n_full, LANES), dtype),
        np.empty((LANES, num_outcomes), np.float64), np.empty(LANES, np.float64),
        np.empty((num_outcomes, LANES), np.float64),
    )  # fmt: skip
    for block in range(c * blocks // chunks, (c + 1) * blocks // chunks):
        block_gradient(block * LANES, bufs, io_inputs, io_targets, scored, ops, tabs, dtabs,
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
