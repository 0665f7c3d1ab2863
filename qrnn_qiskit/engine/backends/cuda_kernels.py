"""CUDA kernels of the exact engine (numba's CUDA target): one thread block per sequence.

The same computation as the CPU kernels (:mod:`qrnn_qiskit.engine.backends.cpu_kernels`), laid out for a GPU: block ``b`` owns
sequence ``b`` and its threads share the amplitude pairs of each neuron's pass (a barrier between
passes). Reductions that decide the numbers (outcome weights, the loss, the norm projection) run
on thread 0 in the CPU kernels' order, so the GPU agrees with the CPU path to rounding of the
device's fused multiply-adds (tested to 1e-10). Per-sequence scratch (states, saved states,
angle gradients) lives in global memory and is allocated per chunk of sequences.

Why numba's CUDA target: the kernels stay Python beside the CPU kernels they mirror, and numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs them on a CPU, so the tests check them where no
GPU exists.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from qrnn_qiskit.engine.backends import reductions
from qrnn_qiskit.engine.backends.cpu import CpuBackend
from qrnn_qiskit.engine.plan import StepPlan

__all__ = ["CudaBackend"]

# the CPU kernels' reductions, compiled for the device (thread 0 runs them): one order on both paths
_outcome_weights = cuda.jit(device=True)(reductions.outcome_weights)
_draw = cuda.jit(device=True)(reductions.draw)
_loss_terms = cuda.jit(device=True)(reductions.loss_terms)

_TINY = 1e-300
_THREADS = 128
_CHUNK = 4096  # sequences per launch: bounds the scratch memory (about 0.7 MB a sequence for MNIST)


@cuda.jit(device=True)
def _pair(k, bit):
    low = bit - 1
    return ((k & ~low) << 1) | (k & low)


@cuda.jit(device=True)
def _rotate(psi, lane, c, s, table):
    """Threads share the pairs of ``lane``; ``table``: cosines/sines per pair (else scalars)."""
    bit = 1 << lane
    for k in range(cuda.threadIdx.x, psi.shape[0] // 2, cuda.blockDim.x):
        w0 = _pair(k, bit)
        w1 = w0 | bit
        if table:
            cc = c[w0]
            ss = s[w0]
        else:
            cc = c[0]
            ss = s[0]
        a = psi[w0]
        b = psi[w1]
        psi[w0] = cc * a - ss * b
        psi[w1] = ss * a + cc * b
    cuda.syncthreads()


@cuda.jit(device=True)
def _copy(dst, src):
    for i in range(cuda.threadIdx.x, dst.shape[0], cuda.blockDim.x):
        dst[i] = src[i]
    cuda.syncthreads()


@cuda.jit(device=True)
def _step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved, save):
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab_c, wtab_s, ucos, usin = tabs
    for op in range(kinds.shape[0]):
        if save:
            _copy(ws_saved[op], psi)
        k = indices[op]
        if kinds[op] == 0:
            _rotate(psi, lanes[op], ucos[k:k + 1], usin[k:k + 1], False)
        else:
            _rotate(psi, lanes[op], wtab_c[k, io], wtab_s[k, io], True)
    mask = (1 << num_in) - 1
    for x in range(cuda.threadIdx.x, full.shape[0], cuda.blockDim.x):
        full[x] = psi[x >> num_in] if (x & mask) == 0 else 0.0
    cuda.syncthreads()
    for op in range(out_neurons.shape[0]):
        if save:
            _copy(full_saved[op], full)
        k = out_neurons[op]
        _rotate(full, out_lanes[op], ctab[k], stab[k], True)


@cuda.jit
def _forward(io_inputs, io_targets, draw, uniforms, ops, tabs, num_in, psi_all, full_all, q_all,
             probs, outcomes, taken, acceptance, status, status_step):
    b = cuda.blockIdx.x
    if b >= io_inputs.shape[0]:
        return
    psi, full, q = psi_all[b], full_all[b], q_all[b]
    chosen = cuda.shared.array(2, np.int64)  # outcome taken, and 1 when the sequence failed
    for w in range(cuda.threadIdx.x, psi.shape[0], cuda.blockDim.x):
        psi[w] = 1.0 if w == 0 else 0.0
    cuda.syncthreads()
    dummy = psi_all[b:b + 1]
    for t in range(io_inputs.shape[1]):
        _step(psi, full, io_inputs[b, t], ops, tabs, num_in, dummy, dummy, False)
        if cuda.threadIdx.x == 0:
            chosen[1] = 0
            z = _outcome_weights(full, q, num_in)
            if z <= _TINY:
                status[b] = 1
                status_step[b] = t
                chosen[1] = 1
            else:
                for y in range(q.shape[0]):
                    probs[b, t, y] = q[y] / z
                y = _draw(probs[b, t], uniforms[b, t]) if draw[b, t] else io_targets[b, t]
                outcomes[b, t] = y
                if q[y] <= _TINY:
                    status[b] = 2
                    status_step[b] = t
                    chosen[1] = 1
                else:
                    taken[b, t] = probs[b, t, y]
                    acceptance[b, t] = z
                    chosen[0] = y
        cuda.syncthreads()
        if chosen[1]:
            return
        y = chosen[0]
        root = math.sqrt(q[y])
        for w in range(cuda.threadIdx.x, psi.shape[0], cuda.blockDim.x):
            psi[w] = full[(w << num_in) | y] / root
        cuda.syncthreads()


@cuda.jit(device=True)
def _reverse(state, g, lane, c, s, dc, ds, d_angle):
    bit = 1 << lane
    for k in range(cuda.threadIdx.x, g.shape[0] // 2, cuda.blockDim.x):
        x0 = _pair(k, bit)
        x1 = x0 | bit
        a = state[x0]
        b = state[x1]
        ga = g[x0]
        gb = g[x1]
        d_angle[x0] += (ga * a + gb * b) * dc[x0] + (gb * a - ga * b) * ds[x0]
        g[x0] = c[x0] * ga + s[x0] * gb
        g[x1] = c[x0] * gb - s[x0] * ga
    cuda.syncthreads()


@cuda.jit(device=True)
def _reverse_unitary(state, g, lane, c, s, partial):
    """Reverse a work-stage RY; thread 0 returns dL/d(angle) from per-thread partial sums."""
    bit = 1 << lane
    d = 0.0
    for k in range(cuda.threadIdx.x, g.shape[0] // 2, cuda.blockDim.x):
        w0 = _pair(k, bit)
        w1 = w0 | bit
        a = state[w0]
        b = state[w1]
        ga = g[w0]
        gb = g[w1]
        d += gb * (c * a - s * b) - ga * (s * a + c * b)
        g[w0] = c * ga + s * gb
        g[w1] = c * gb - s * ga
    partial[cuda.threadIdx.x] = d
    cuda.syncthreads()
    total = 0.0
    if cuda.threadIdx.x == 0:
        for i in range(cuda.blockDim.x):
            total += partial[i]
    cuda.syncthreads()
    return 0.5 * total


@cuda.jit(device=True)
def _teacher_forced(b, io_inputs, io_targets, ops, tabs, num_in, starts, psi, full, q, probs, acceptance,
                    status, status_step, flag):
    """Forward pass of sequence ``b`` under teacher forcing, keeping each step's start; returns
    True (for every thread) when a postselection failed."""
    tid = cuda.threadIdx.x
    dummy = starts[0:1]
    for t in range(io_inputs.shape[1]):
        _copy(starts[t], psi)
        _step(psi, full, io_inputs[b, t], ops, tabs, num_in, dummy, dummy, False)
        y = io_targets[b, t]
        if tid == 0:
            flag[0] = 0
            z = _outcome_weights(full, q, num_in)
            if z <= _TINY or q[y] <= _TINY:
                status[b] = 1 if z <= _TINY else 2
                status_step[b] = t
                flag[0] = 1
            else:
                for k in range(q.shape[0]):
                    probs[b, t, k] = q[k] / z
                acceptance[b, t] = z
        cuda.syncthreads()
        if flag[0]:
            return True
        root = math.sqrt(q[y])
        for w in range(tid, psi.shape[0], cuda.blockDim.x):
            psi[w] = full[(w << num_in) | y] / root
        cuda.syncthreads()
    return False


@cuda.jit(device=True)
def _parameter_row(d_full, d_ws, d_unitary, num_in, layout, row, num_unitaries):
    """Angle gradients -> the parameter row (superset sums), as the CPU kernel."""
    masks, mask_offsets, bias_index, unitary_index = layout
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    size = d_full.shape[1]
    for k in range(d_full.shape[0]):
        for x in range(tid, size, step):
            d_full[k, x] += d_ws[k, x & ((1 << num_in) - 1), x >> num_in]
    cuda.syncthreads()
    bit = 1
    while bit < size:
        for k in range(d_full.shape[0]):
            for j in range(tid, size // 2, step):
                x = _pair(j, bit)
                d_full[k, x] += d_full[k, x | bit]
        cuda.syncthreads()
        bit *= 2
    for k in range(tid, d_full.shape[0], step):
        first = bias_index[k] - (mask_offsets[k + 1] - mask_offsets[k])
        for i in range(mask_offsets[k], mask_offsets[k + 1]):
            row[first + i - mask_offsets[k]] = d_full[k, masks[i]]
        row[bias_index[k]] = d_full[k, 0]
    for u in range(tid, num_unitaries, step):
        row[unitary_index[u]] = d_unitary[u]


@cuda.jit(device=True)
def _clear(psi, g_next, d_unitary, d_full, d_ws, num_unitaries):
    """|0...0> in ``psi``; zero gradients."""
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    for w in range(tid, psi.shape[0], step):
        psi[w] = 1.0 if w == 0 else 0.0
        g_next[w] = 0.0
    for u in range(tid, num_unitaries, step):
        d_unitary[u] = 0.0
    for k in range(d_full.shape[0]):
        for x in range(tid, d_full.shape[1], step):
            d_full[k, x] = 0.0
        for io in range(d_ws.shape[1]):
            for w in range(tid, psi.shape[0], step):
                d_ws[k, io, w] = 0.0
    cuda.syncthreads()


@cuda.jit(device=True)
def _measurement_terms(full, q, y, scored_t, probs_t, g_next, gp, num_in):
    """Thread 0: the step's loss term and what the gradient at the step's end needs, in ``gp``:
    dL/dp per outcome, then ``sum gp p``, the outcome weights' sum ``z`` and the projection of
    the next step's gradient on the postselected state (the CPU kernel's ``_step_gradient``)."""
    num_outcomes = q.shape[0]
    z = _outcome_weights(full, q, num_in)
    for k in range(num_outcomes):
        gp[k] = 0.0
    loss = 0.0
    if scored_t:
        loss = _loss_terms(probs_t, y, gp)
    dot = 0.0
    for k in range(num_outcomes):
        dot += gp[k] * probs_t[k]
    root = math.sqrt(q[y])
    proj = 0.0
    for w in range(g_next.shape[0]):
        proj += full[(w << num_in) | y] / root * g_next[w]
    gp[num_outcomes] = dot
    gp[num_outcomes + 1] = z
    gp[num_outcomes + 2] = proj
    return loss


@cuda.jit
def _gradient(io_inputs, io_targets, scored, ops, tabs, dtabs, layout, num_in, scratch, probs,
              acceptance, loss_rows, grad_rows, status, status_step):
    b = cuda.blockIdx.x
    if b >= io_inputs.shape[0]:
        return
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab_c, wtab_s, ucos, usin = tabs
    dctab, dstab, dwtab_c, dwtab_s = dtabs
    starts, psi, full, q, ws_saved, full_saved, d_full, d_ws, g_next, g_full, gp = scratch
    starts, psi, full, q = starts[b], psi[b], full[b], q[b]
    ws_saved, full_saved, d_full, d_ws = ws_saved[b], full_saved[b], d_full[b], d_ws[b]
    g_next, g_full, gp = g_next[b], g_full[b], gp[b]
    flag = cuda.shared.array(1, np.int64)
    partial = cuda.shared.array(_THREADS, np.float64)
    d_unitary = cuda.shared.array(64, np.float64)  # work-stage angles: S * W <= 64 (checked)
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    steps = io_inputs.shape[1]
    _clear(psi, g_next, d_unitary, d_full, d_ws, ucos.shape[0])
    if _teacher_forced(b, io_inputs, io_targets, ops, tabs, num_in, starts, psi, full, q, probs, acceptance,
                       status, status_step, flag):
        return
    # reverse pass
    loss = 0.0
    for t in range(steps - 1, -1, -1):
        _copy(psi, starts[t])
        io = io_inputs[b, t]
        _step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved, True)
        y = io_targets[b, t]
        num_outcomes = q.shape[0]
        if tid == 0:
            loss += _measurement_terms(full, q, y, scored[t], probs[b, t], g_next, gp, num_in)
        cuda.syncthreads()
        dot, z, proj = gp[num_outcomes], gp[num_outcomes + 1], gp[num_outcomes + 2]
        root = math.sqrt(q[y])
        for x in range(tid, full.shape[0], step):
            g_full[x] = 2.0 * full[x] * ((gp[x & (num_outcomes - 1)] - dot) / z)
            if (x & (num_outcomes - 1)) == y:
                g_full[x] += (g_next[x >> num_in] - full[x] / root * proj) / root
        cuda.syncthreads()
        for op in range(out_neurons.shape[0] - 1, -1, -1):
            k = out_neurons[op]
            _reverse(full_saved[op], g_full, out_lanes[op], ctab[k], stab[k], dctab[k], dstab[k], d_full[k])
        for w in range(tid, psi.shape[0], step):
            g_next[w] = g_full[w << num_in]
        cuda.syncthreads()
        for op in range(kinds.shape[0] - 1, -1, -1):
            k = indices[op]
            if kinds[op] == 0:
                d = _reverse_unitary(ws_saved[op], g_next, lanes[op], ucos[k], usin[k], partial)
                if tid == 0:
                    d_unitary[k] += d
            else:
                _reverse(ws_saved[op], g_next, lanes[op], wtab_c[k, io], wtab_s[k, io], dwtab_c[k, io],
                         dwtab_s[k, io], d_ws[k, io])
    _parameter_row(d_full, d_ws, d_unitary, num_in, layout, grad_rows[b], ucos.shape[0])
    if tid == 0:
        loss_rows[b] = loss


class CudaBackend(CpuBackend):
    """The GPU path: the CPU path's tables (workspace neurons in their own layout) and op arrays,
    CUDA kernels, chunks of sequences."""

    def __init__(self, plan: StepPlan, precision: str = "float64") -> None:
        super().__init__(plan, precision)
        cfg = plan.config
        if cfg.stages * cfg.workspace > 64:
            raise ValueError(f"engine 'gpu' supports stages * workspace <= 64, got {cfg.stages * cfg.workspace}.")
        self.threads = min(_THREADS, max(1, (1 << plan.num_lanes) // 2))

    def with_ws_layout(self, c: np.ndarray, s: np.ndarray) -> list[np.ndarray]:
        """Full-pattern tables ``(N, 2**n)`` and their workspace layout ``(N, 2**I, 2**W)``.

        A workspace neuron of a sequence whose io lanes hold ``io`` reads row ``[k, io]``, so
        its pass over amplitude pairs reads the table contiguously.
        """
        cfg = self.plan.config
        shape = (cfg.num_neurons, 1 << cfg.workspace, cfg.num_outcomes)
        return [c, s, c.reshape(shape).transpose(0, 2, 1), s.reshape(shape).transpose(0, 2, 1)]

    def _device(self, arrays):
        return tuple(cuda.to_device(np.ascontiguousarray(a)) for a in arrays)

    def forward(self, params, io_inputs, io_targets, draw, uniforms):
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        tabs = self._device(self.tables(params, derivatives=False))
        ops = self._device(self.ops)
        targets = io_targets if io_targets is not None else np.zeros_like(io_inputs)
        out = [np.zeros((batch, steps, cfg.num_outcomes)), np.zeros((batch, steps), np.int64),
               np.zeros((batch, steps)), np.zeros((batch, steps)), np.zeros(batch, np.int64),
               np.zeros(batch, np.int64)]
        for a in range(0, batch, _CHUNK):
            sl = slice(a, min(a + _CHUNK, batch))
            n = sl.stop - sl.start
            scratch = (cuda.device_array((n, 1 << cfg.workspace), self.dtype),
                       cuda.device_array((n, 1 << self.plan.num_lanes), self.dtype),
                       cuda.device_array((n, cfg.num_outcomes), self.dtype))
            dev = [cuda.to_device(np.ascontiguousarray(o[sl])) for o in out]
            _forward[n, self.threads](
                *self._device((io_inputs[sl], targets[sl], draw[sl], uniforms[sl])), ops, tabs, cfg.input_width,
                *scratch, *dev)
            for o, d in zip(out, dev):
                o[sl] = d.copy_to_host()
        probs, outcomes, taken, acceptance, status, status_step = out
        self.raise_failures(status, status_step, outcomes)
        return probs, outcomes, taken, acceptance

    def loss_and_gradient_rows(self, params, io_inputs, io_targets, scored):
        cfg, plan = self.plan.config, self.plan
        batch, steps = io_inputs.shape
        tabs, dtabs = self.tables(params, derivatives=True)
        tabs, dtabs = self._device(tabs), self._device(dtabs)
        ops, layout = self._device(self.ops), self._device(self.layout)
        out = [np.zeros((batch, steps, cfg.num_outcomes)), np.zeros((batch, steps)), np.zeros(batch),
               np.zeros((batch, cfg.num_parameters)), np.zeros(batch, np.int64), np.zeros(batch, np.int64)]
        n_ws, n_full = 1 << cfg.workspace, 1 << plan.num_lanes
        for a in range(0, batch, _CHUNK):
            sl = slice(a, min(a + _CHUNK, batch))
            n = sl.stop - sl.start
            scratch = (
                cuda.device_array((n, steps, n_ws), self.dtype), cuda.device_array((n, n_ws), self.dtype),
                cuda.device_array((n, n_full), self.dtype), cuda.device_array((n, cfg.num_outcomes), self.dtype),
                cuda.device_array((n, len(self.kinds), n_ws), self.dtype),
                cuda.device_array((n, len(self.out_neurons), n_full), self.dtype),
                cuda.device_array((n, cfg.num_neurons, n_full), np.float64),
                cuda.device_array((n, cfg.num_neurons, cfg.num_outcomes, n_ws), np.float64),
                cuda.device_array((n, n_ws), self.dtype), cuda.device_array((n, n_full), self.dtype),
                cuda.device_array((n, cfg.num_outcomes + 3), np.float64),
            )
            dev = [cuda.to_device(np.ascontiguousarray(o[sl])) for o in out]
            _gradient[n, self.threads](
                *self._device((io_inputs[sl], io_targets[sl], scored)), ops, tabs, dtabs, layout, cfg.input_width,
                scratch, *dev)
            for o, d in zip(out, dev):
                o[sl] = d.copy_to_host()
        probs, acceptance, loss_rows, grad_rows, status, status_step = out
        self.raise_failures(status, status_step, io_targets)
        return loss_rows, grad_rows, probs, acceptance
