"""Compiled (numba) kernels of the exact engine's reverse pass: loss and gradient rows per sequence.

A block of eight sequences (:mod:`qrnn_qiskit.engine.backends.cpu_kernels`) is run forward under
teacher forcing, keeping each step's start state, and then reversed step by step: each step is
recomputed from its start with its intermediate states kept, and every rotation is reversed in
turn, its angle gradient added per pattern and lane. Gradients are accumulated per sequence into
rows of ``(B, P)`` and summed afterwards in sequence order (``cpu.sum_rows``), so results do not
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
    aligned_empty,
    block_buffers,
    block_io,
    block_weights,
    by_lane,
    copy_into,
    inner,
    lane_indices,
    pair,
    start_block,
    step,
)
from qrnn_qiskit.engine.backends.cpu_lanes import element, keep_where, load, splat, store, widen
from qrnn_qiskit.engine.backends.cpu_pick import pick8
from qrnn_qiskit.engine.backends.reductions import loss_terms

__all__ = ["loss_and_gradient"]

loss_terms_kernel = inner(loss_terms)


@inner
def angle_term(g, h, a, b, dc, ds):
    """``dL/dAngle`` of a pair rotation, lane by lane: ``(g a + h b) dC + (h a - g b) dS`` (rows;
    a derivative shared by the lanes comes :func:`splat`, so that this is compiled once)."""
    return (g * a + h * b) * dc + (h * a - g * b) * ds


@inner
def reverse_shared(state, g, bit, c, s, dc, ds, d):
    """Reverse :func:`rotate_shared`: ``d[pair, lane] += dL/dAngle``; ``g`` <- transpose map."""
    for k in range(uint64(g.shape[0] // 2)):
        x0 = pair(k, bit)
        x1 = x0 | bit
        cc, ss = c[x0], s[x0]
        a, b, gg, h = load(state, x0), load(state, x1), load(g, x0), load(g, x1)
        store(d, x0, load(d, x0) + widen(angle_term(gg, h, a, b, splat(dc[x0]), splat(ds[x0]))))
        store(g, x0, cc * gg + ss * h)
        store(g, x1, cc * h - ss * gg)


@inner
def reverse_lanes(state, g, bit, tab, dtab, d, io):
    """Reverse :func:`rotate_lanes`: ``d[pair, io[lane], lane] += dL/dAngle``; ``g`` <- transpose
    (the table entries read as there, by the tables' number of dimensions: picked by permute from
    rows of eight, or one by one)."""
    if tab.ndim == 2:
        cos_at, sin_at = lane_indices(io, uint64(0)), lane_indices(io, uint64(tab.shape[1] // 2))
        for k in range(uint64(g.shape[0] // 2)):
            x0 = pair(k, bit)
            x1 = x0 | bit
            entries, derivatives = load(tab, x0), load(dtab, x0)
            c, s = pick8(entries, cos_at), pick8(entries, sin_at)
            a, b, gg, h = load(state, x0), load(state, x1), load(g, x0), load(g, x1)
            term = widen(angle_term(gg, h, a, b, pick8(derivatives, cos_at), pick8(derivatives, sin_at)))
            sums = d[x0]  # one vector addition per io pattern; + 0.0 leaves the other lanes' sums alone
            for j in range(sums.shape[0]):
                store(sums, j, load(sums, j) + keep_where(cos_at, j, term))
            store(g, x0, c * gg + s * h)
            store(g, x1, c * h - s * gg)
    else:
        i0, i1, i2, i3, i4, i5, i6, i7 = lane_indices(io, uint64(0))
        for k in range(uint64(g.shape[0] // 2)):
            x0 = pair(k, bit)
            x1 = x0 | bit
            c = by_lane(tab, x0, 0, i0, i1, i2, i3, i4, i5, i6, i7)
            s = by_lane(tab, x0, 1, i0, i1, i2, i3, i4, i5, i6, i7)
            e = by_lane(dtab, x0, 0, i0, i1, i2, i3, i4, i5, i6, i7)
            f = by_lane(dtab, x0, 1, i0, i1, i2, i3, i4, i5, i6, i7)
            a, b, gg, h = load(state, x0), load(state, x1), load(g, x0), load(g, x1)
            term = widen(angle_term(gg, h, a, b, e, f))
            for i in range(LANES):
                d[x0, io[i], i] += element(term, i)
            store(g, x0, c * gg + s * h)
            store(g, x1, c * h - s * gg)


@inner
def reverse_uniform(state, g, bit, c, s, d):
    """Reverse :func:`rotate_uniform`; ``d[lane] +=`` dL/d(angle) of the work-stage RY."""
    total = splat(0.0)
    for k in range(uint64(g.shape[0] // 2)):
        x0 = pair(k, bit)
        x1 = x0 | bit
        a, b, gg, h = load(state, x0), load(state, x1), load(g, x0), load(g, x1)
        total = total + widen(h * (c * a - s * b) - gg * (s * a + c * b))
        store(g, x0, c * gg + s * h)
        store(g, x1, c * h - s * gg)
    sums = d.reshape(1, LANES)
    store(sums, 0, load(sums, 0) + 0.5 * total)


@inner
def backward_step(g_full, g_ws, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                   d_ws, d_unitary):
    """Reverse one step's neurons: ``g_full`` (gradient at the step's end) -> ``g_ws`` (start)."""
    kinds, lanes, indices, out_neurons, out_lanes = ops
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
            reverse_lanes(ws_saved[op], g_ws, bit, wtab[k], dwtab[k], d_ws[k], io)


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
def end_of_step(full, q, z, probs, targets, scored, b0, t, alive, gp, loss, factor, g_next, g_full, num_in):
    """The gradient at the end of step ``t``'s neurons, ``g_full``, for every lane of a block.

    From the loss (a scored step adds its terms to ``loss`` and their gradient ``gp``) through
    ``p = q / z``: ``factor[y', lane] = (gp[y'] - gp . p) / z``, and through ``q[y'] = sum_w
    full[w, y']**2``: ``g_full[x, lane] = 2 full[x, lane] factor[y(x), lane]``, all lanes at once
    (a lane-by-lane loop strode through the block a cache line an amplitude). Then, added, the
    gradient from the next step (``g_next``) through the postselected ``psi_next = full[:, y] /
    sqrt(q[y])``. One function rather than three: each numba function costs 40-70 ms to compile
    in a fresh environment."""
    outcomes = factor.shape[0]
    for lane in range(LANES):
        factor[:, lane] = 0.0
        if alive[lane]:
            b = b0 + lane
            gp[lane] = 0.0
            if scored:
                loss[lane] += loss_terms_kernel(probs[b, t], targets[b, t], gp[lane])
            dot = 0.0
            for k in range(outcomes):
                dot += gp[lane, k] * probs[b, t, k]
            for k in range(outcomes):
                factor[k, lane] = (gp[lane, k] - dot) / z[lane]
    for x in range(full.shape[0]):
        y = x & (outcomes - 1)
        for lane in range(LANES):
            g_full[x, lane] = 2.0 * full[x, lane] * factor[y, lane]
    for lane in range(LANES):
        if alive[lane]:
            y = targets[b0 + lane, t]
            root = math.sqrt(q[y, lane])
            proj = 0.0
            for w in range(g_next.shape[0]):
                proj += full[(w << num_in) | y, lane] / root * g_next[w, lane]
            for w in range(g_next.shape[0]):
                x = (w << num_in) | y
                g_full[x, lane] += (g_next[w, lane] - full[x, lane] / root * proj) / root


def run_buffers(dtype, steps, ops, tabs, num_in, num_ws) -> tuple:
    """One run's (thread's) buffers for :func:`loss_and_gradient`: a block's own
    (:func:`~qrnn_qiskit.engine.backends.cpu_kernels.block_buffers`, which says why numpy
    allocates them), each step's start state, the states kept within a step (at least one slot
    each), the angle gradients (double), the state gradients at a step's start and end, and the
    loss terms."""
    num_outcomes, n_ws, n_full = 1 << num_in, 1 << num_ws, 1 << (num_ws + num_in)
    n_neurons, n_unitary = tabs[0].shape[0], tabs[3].shape[0]
    n_io, n_out = max(ops[0].shape[0], 1), max(ops[3].shape[0], 1)
    shapes = (((steps, n_ws, LANES), dtype), ((n_io, n_ws, LANES), dtype), ((n_out, n_full, LANES), dtype),
              ((n_neurons, n_full, LANES), np.float64), ((n_neurons, n_ws, num_outcomes, LANES), np.float64),
              ((n_unitary, LANES), np.float64), ((n_ws, LANES), dtype), ((n_full, LANES), dtype),
              ((LANES, num_outcomes), np.float64), (LANES, np.float64), ((num_outcomes, LANES), np.float64))
    return block_buffers(dtype, num_in, num_ws) + tuple(aligned_empty(shape, kind) for shape, kind in shapes)


@njit(cache=True, nogil=True)
def loss_and_gradient(c, chunks, buffers, io_inputs, io_targets, scored, forced, ops, tabs, dtabs, layout, num_in,
                      probs, acceptance, loss_rows, grad_rows, status, status_step):
    """Teacher-forced forward pass and reverse-mode gradient of run ``c`` of ``chunks``, a block of
    sequences at a time.

    ``loss_rows[b]`` is the sum over scored steps of ``logsumexp(p) - p[target]`` and
    ``grad_rows[b]`` its gradient (neither divided by the count nor offset). The blocks are cut
    into ``chunks`` runs (one per thread; the kernel releases the GIL), each with its own
    ``buffers`` (:func:`run_buffers`);
    the forward pass keeps each step's start state (``T * 2**W * 8`` numbers a block) and the
    reverse pass recomputes the step from it. Each sequence's row depends on nothing but that
    sequence, so neither the chunks nor the threads change a bit of the result. ``forced`` is the
    teacher-forced pass's ``(draw, uniforms, outcomes, taken)`` for the forward pass's step
    function, ``(B, T)`` each: no step drawn (``draw`` all false), the others written per
    sequence and not read back; one set for all runs, from the caller.

    A block's passes are written here rather than in a function of their own: numba optimises
    and compiles every function it links into another once more as part of that one, and the
    block's function, nearly all of this kernel's code, cost 1.5 s of LLVM time a second time
    in a fresh environment (``NUMBA_LLVM_PASS_TIMINGS``).
    """
    batch, steps = io_inputs.shape
    blocks = (batch + LANES - 1) // LANES
    draw, uniforms, outcomes, taken = forced
    (psi, full, q, z, io, alive, starts, ws_saved, full_saved, d_full, d_ws, d_unitary, g_next, g_full, gp, loss,
     factor) = buffers
    for block in range(c * blocks // chunks, (c + 1) * blocks // chunks):
        b0 = block * LANES
        start_block(psi, b0, batch, alive)
        for t in range(steps):  # teacher-forced forward pass, keeping each step's start
            copy_into(starts[t], psi)
            advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, draw, uniforms, ops, tabs,
                     num_in, probs, outcomes, taken, acceptance, status, status_step)
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
            end_of_step(full, q, z, probs, io_targets, scored[t], b0, t, alive, gp, loss, factor, g_next, g_full,
                        num_in)
            backward_step(g_full, g_next, ws_saved, full_saved, io, ops, tabs, dtabs, num_in, d_full,
                           d_ws, d_unitary)
        for lane in range(LANES):
            if alive[lane]:
                loss_rows[b0 + lane] = loss[lane]
        block_rows(d_full, d_ws, d_unitary, num_in, layout, alive, grad_rows, b0)
