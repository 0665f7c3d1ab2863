"""Compiled (numba) kernels of the exact engine's forward pass: blocks of eight sequences side by side.

These compute what the numpy backend (:mod:`qrnn_qiskit.engine.backends.numpy`) computes. A
thread takes a block of ``LANES`` (8) consecutive sequences and keeps their states interleaved,
``psi[w, lane]``, so that every amplitude-pair update of a neuron is one 8-wide vector operation
whichever qubit it acts on: one AVX-512 register of float64 (two AVX2 ones where the CPU has no
AVX-512; eight lanes measured 1.15-1.24x faster than four in the forward pass and 1.08-1.11x in
forward + gradient, on this project's AVX-512 machine, in one process side by side:
``benchmarks/engine_ab.py --same-process``). The states stay small enough for the cache
(``2**W x 8`` amplitudes, 16 KiB for the MNIST models). A work-stage rotation has one angle
for all eight sequences; an input or work neuron reads each sequence's angle from the row of its io
pattern (``tab[w, 0/1, io]``: the cosines and sines of all io patterns of one workspace pattern
share a cache line); an output neuron acts on full patterns, whose table is the same for every
sequence. A pair loop within one state would vectorise only for qubits whose pairs lie at least
four amplitudes apart; with the sequences side by side every pair update is a vector operation.
The kernels are compiled with LLVM's SLP vectoriser switched on (numba leaves it off by default;
:mod:`qrnn_qiskit.engine.backends.cpu` does that around each call). Each sequence's arithmetic is
the same as one sequence alone, in the same order, so the results do not depend on which block
or lane a sequence lands in, nor on the number of threads. The reverse pass is in
:mod:`qrnn_qiskit.engine.backends.cpu_gradient`; why these choices, and what they cost, is in
``docs/decisions.md``.

Why numba and not a C extension: it installs as a wheel on every platform the package supports,
needs no compiler on the user's machine, caches its machine code on disk (``cache=True``), and
keeps the kernels readable Python beside the numpy path they are tested against.

Conventions are those of the numpy backend: the full pattern index is ``ws << I | io`` with lane
``q`` at bit ``q``; io values are bit-reversed tokens (io lane 0 = the token's most significant
bit). Op arrays describe one step's input and work stages: ``kind`` 0 = a work-stage RY on
workspace lane ``lane`` with angle number ``index``, 1 = a neuron ``index`` on workspace lane
``lane``; output neurons come as (neuron, io lane). The input and work neurons' table comes as
``(N, 2**W, 2, 2**I)``, read entry by entry, or, where its entries are picked by permute
(:mod:`~qrnn_qiskit.engine.backends.cpu_pick`), as rows of eight ``(N, 2**W, 8)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from qrnn_qiskit.engine.backends.cpu_lanes import WIDTH, load, pack, splat, store
from qrnn_qiskit.engine.backends.cpu_pick import pick8
from qrnn_qiskit.engine.backends.reductions import NEURONS_VANISH, OK, OUTCOME_IMPOSSIBLE, TINY, draw

__all__ = ["ALIGN", "LANES", "aligned_empty", "block_buffers", "forward", "inner"]

#: sequences per block: one row of the pair kernels' vectors (cpu_lanes.WIDTH)
LANES = WIDTH
#: the decorator of every function the kernels call: without the wrappers numba adds by default
#: so that Python (and C) can call a function, which only the kernels themselves need (each is
#: compiled to machine code in a fresh environment), and not cached on disk: a kernel's cached
#: machine code holds all it calls, so later processes load the kernels alone (6 cache files, 0.7
#: MB, against 58 and 1.6 MB with every function cached, whose writing a first run also paid)
inner = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
# draws as the numpy backend does (the CUDA kernels compile the same function)
draw_outcome = inner(draw)


# Pair loops index with unsigned integers: numba's signed indexing adds a negative-index check per
# access that keeps LLVM from optimising the loop (measured 2-6 ns per pair against about 1).
@inner
def pair(k, bit):
    """The ``k``-th index whose lane bit ``bit`` is 0 (a zero bit inserted into ``k``)."""
    low = bit - uint64(1)
    return ((k & ~low) << uint64(1)) | (k & low)


# The small helpers below are ordinary numba functions, not inlined by numba (``inline="always"``):
# LLVM inlines them anyway when it optimises a kernel, and leaving that to LLVM made the first
# compilation 1.15x faster (benchmarks/first_use.py: 25.9 s -> 22.5 s) with the same code speed.
# A row of eight lanes is one value (cpu_lanes.Lanes, an LLVM vector): ``load``/``store`` a row,
# ``+ - *`` lane by lane.
@inner
def turn(src, dst, x0, x1, c, s):
    """``(a, b) <- (c a - s b, s a + c b)`` on the pair of rows ``x0``, ``x1``, with a cosine and
    sine per lane (rows; a number for all lanes comes :func:`splat`, the same arithmetic, so that
    this is compiled once); the loads come before the stores (``src`` may be ``dst``)."""
    a, b = load(src, x0), load(src, x1)
    store(dst, x0, c * a - s * b)
    store(dst, x1, s * a + c * b)


@inner
def by_lane(tab, x, which, i0, i1, i2, i3, i4, i5, i6, i7):
    """Each lane's entry ``tab[x, which, io[lane]]`` of an io-pattern table, as a row."""
    return pack((tab[x, which, i0], tab[x, which, i1], tab[x, which, i2], tab[x, which, i3],
                 tab[x, which, i4], tab[x, which, i5], tab[x, which, i6], tab[x, which, i7]))


# The pair kernels read ``src`` and write ``dst``, which may be the same array (in place) or the
# next slot of a step's kept states, so that keeping them costs no copy.
@inner
def rotate_uniform(src, dst, bit, c, s):
    """``(a, b) <- (c a - s b, s a + c b)`` on every pair of qubit ``bit`` (one angle for all lanes)."""
    cc, ss = splat(c), splat(s)
    for k in range(uint64(src.shape[0] // 2)):
        x0 = pair(k, bit)
        turn(src, dst, x0, x0 | bit, cc, ss)


@inner
def rotate_shared(src, dst, bit, c, s):
    """The same with a cosine and sine per pair (read at its first index), shared by the lanes."""
    for k in range(uint64(src.shape[0] // 2)):
        x0 = pair(k, bit)
        turn(src, dst, x0, x0 | bit, splat(c[x0]), splat(s[x0]))


@inner
def lane_indices(io, offset):
    """Each lane's io pattern plus ``offset``, as the index tuple :func:`pick8` takes."""
    return (uint64(io[0]) + offset, uint64(io[1]) + offset, uint64(io[2]) + offset, uint64(io[3]) + offset,
            uint64(io[4]) + offset, uint64(io[5]) + offset, uint64(io[6]) + offset, uint64(io[7]) + offset)


@inner
def rotate_lanes(src, dst, bit, tab, io):
    """The same with each lane's own cosine and sine, from the table of the lanes' io patterns.

    A 2-D ``tab`` is rows of eight entries, the cosines then the sines of a two-qubit input's four
    io patterns (:mod:`~qrnn_qiskit.engine.backends.cpu_pick`): each row is loaded once and each
    lane's entries are picked from it by permute. A 3-D ``tab[x, 0 / 1, io]`` is read entry by
    entry. numba decides between the two when it compiles (``tab.ndim`` of an argument is a
    constant to it, and the other branch is dropped), so only the path a model takes is compiled.
    """
    if tab.ndim == 2:
        cos_at, sin_at = lane_indices(io, uint64(0)), lane_indices(io, uint64(tab.shape[1] // 2))
        for k in range(uint64(src.shape[0] // 2)):
            x0 = pair(k, bit)
            entries = load(tab, x0)
            turn(src, dst, x0, x0 | bit, pick8(entries, cos_at), pick8(entries, sin_at))
    else:
        i0, i1, i2, i3, i4, i5, i6, i7 = lane_indices(io, uint64(0))
        for k in range(uint64(src.shape[0] // 2)):
            x0 = pair(k, bit)
            turn(src, dst, x0, x0 | bit, by_lane(tab, x0, 0, i0, i1, i2, i3, i4, i5, i6, i7),
                 by_lane(tab, x0, 1, i0, i1, i2, i3, i4, i5, i6, i7))


# numba's array-to-array assignment (``a[i] = b``) guards against overlap with a temporary copy,
# an allocation per call that cost more than the rotations themselves (measured: a step that keeps
# its intermediate states took 141 us a block against 29 us without); this loop copies in place.
@inner
def copy_into(dst, src):
    """``dst[:] = src`` for two equally shaped ``(n, 8)`` arrays of rows, a row at a time."""
    for x in range(uint64(src.shape[0])):
        store(dst, x, load(src, x))


@inner
def step(psi, full, io, ops, tabs, num_in, ws_saved, full_saved):
    """One cell step of a block: ``full`` <- the unnormalised states after every neuron.
    ``io[lane]`` is each sequence's io pattern at this step.

    With empty ``ws_saved`` (no slots) the step starts from ``psi`` and changes it in place.
    Otherwise it starts from ``ws_saved[0]`` and keeps the state before each input or work op
    ``i`` in ``ws_saved[i]`` and before each output op ``j`` in ``full_saved[j]`` (``psi`` ends as
    the state after the work stages). Whether to keep is read from the buffers rather than passed
    as a constant: numba compiles a function anew for each constant argument, and this one twice
    cost a second of the first compilation.
    """
    kinds, lanes, indices, out_neurons, out_lanes = ops
    ctab, stab, wtab, ucos, usin = tabs
    n_ops, n_out = kinds.shape[0], out_neurons.shape[0]
    save = ws_saved.shape[0] > 0
    if save and n_ops == 0:
        copy_into(psi, ws_saved[0])
    for op in range(n_ops):
        src = ws_saved[op] if save else psi
        dst = ws_saved[op + 1] if save and op + 1 < n_ops else psi
        k = indices[op]
        bit = uint64(1) << uint64(lanes[op])
        if kinds[op] == 0:
            rotate_uniform(src, dst, bit, ucos[k], usin[k])
        else:
            rotate_lanes(src, dst, bit, wtab[k], io)
    first = full_saved[0] if save and n_out > 0 else full
    first[:] = 0.0
    for w in range(psi.shape[0]):
        for lane in range(LANES):
            first[w << num_in, lane] = psi[w, lane]
    for op in range(n_out):
        src = full_saved[op] if save else full
        dst = full_saved[op + 1] if save and op + 1 < n_out else full
        k = out_neurons[op]
        rotate_shared(src, dst, uint64(1) << uint64(out_lanes[op]), ctab[k], stab[k])


@inner
def block_weights(full, q, z, num_in):
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


@inner
def block_io(io_inputs, b0, batch, t, alive, io):
    """Each lane's io pattern at step ``t`` (0 for padding and stopped lanes)."""
    for lane in range(LANES):
        io[lane] = io_inputs[b0 + lane, t] if b0 + lane < batch and alive[lane] else 0


@inner
def start_block(psi, b0, batch, alive):
    """All lanes at |0...0>; lanes past the end of the batch (padding) are never alive."""
    psi[:] = 0.0
    for lane in range(LANES):
        psi[0, lane] = 1.0
        alive[lane] = b0 + lane < batch


@inner
def advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, draw, uniforms, ops, tabs, num_in,
             probs, outcomes, taken, acceptance, status, status_step):
    """Step ``t`` of a block: every live lane's distribution, its outcome (drawn where ``draw``
    says, else its target) and its next start state; a lane whose step fails is stopped and why
    recorded; returns whether any lane is still alive. (Small steps such as the postselection
    are written here, not as functions of their own: each numba function costs 40-70 ms to
    compile in a fresh environment.)"""
    block_io(io_inputs, b0, io_inputs.shape[0], t, alive, io)
    nothing = psi[np.newaxis][:0]  # no intermediate states kept: an empty view for the buffers
    step(psi, full, io, ops, tabs, num_in, nothing, nothing)
    block_weights(full, q, z, num_in)
    for lane in range(LANES):
        if not alive[lane]:
            continue
        b = b0 + lane
        failed = NEURONS_VANISH if z[lane] <= TINY else OK
        if failed == OK:
            for y in range(q.shape[0]):
                probs[b, t, y] = q[y, lane] / z[lane]
            y = draw_outcome(probs[b, t], uniforms[b, t]) if draw[b, t] else io_targets[b, t]
            outcomes[b, t] = y
            failed = OUTCOME_IMPOSSIBLE if q[y, lane] <= TINY else OK
        if failed != OK:  # park the lane at |0...0> (finite numbers for the others' sake)
            status[b], status_step[b] = failed, t
            alive[lane] = False
            psi[:, lane] = 0.0
            psi[0, lane] = 1.0
            continue
        root = math.sqrt(q[y, lane])  # the next step's start: the outcome's states, normalised
        for w in range(psi.shape[0]):
            psi[w, lane] = full[(w << num_in) | y, lane] / root
        taken[b, t] = probs[b, t, y]
        acceptance[b, t] = z[lane]
    live = False  # whether a lane is left (alive.any() would be one more function to compile)
    for lane in range(LANES):
        live |= alive[lane]
    return live


#: bytes: a cache line, and a row of eight float64 (an AVX-512 register)
ALIGN = 64


def aligned_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting at a multiple of :data:`ALIGN` bytes, so that a row of
    eight lanes never straddles two cache lines. numpy aligns to 16 bytes only (numba's own
    allocations are mostly aligned to 64); in numpy's buffers forward + gradient ran 0.92x as fast
    (``benchmarks/engine_ab.py --same-process``)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + size].view(dtype).reshape(shape)


def block_buffers(dtype, num_in, num_ws) -> tuple:
    """A block's state ``psi``, its states after the neurons ``full``, the outcome weights ``q``
    (of ``dtype``), their sums ``z`` (double), the lanes' io patterns and which lanes are alive:
    one set per run (thread) of either kernel, none of them set (:func:`start_block` and
    :func:`block_io` set every lane before it is read). Allocated here, by numpy, rather than in
    the kernels: numba compiles its ``np.empty`` once for each shape type, dtype and calling
    function, and every numba function costs 40-70 ms to compile in a fresh environment."""
    return (aligned_empty((1 << num_ws, LANES), dtype), aligned_empty((1 << (num_ws + num_in), LANES), dtype),
            aligned_empty((1 << num_in, LANES), dtype), aligned_empty(LANES, np.float64),
            aligned_empty(LANES, np.int64), aligned_empty(LANES, np.bool_))


@njit(cache=True, nogil=True)
def forward(first, last, buffers, io_inputs, io_targets, draw, uniforms, ops, tabs, num_in,
            probs, outcomes, taken, acceptance, status, status_step):
    """Forward pass of the blocks ``first .. last - 1`` of ``B`` sequences (outputs in io order,
    written in place), in the run's own ``buffers`` (:func:`block_buffers`). Blocks touch only
    their own sequences' outputs, so threads may run disjoint ranges at once (the kernel releases
    the GIL; :func:`~qrnn_qiskit.engine.backends.cpu.run_threaded`)."""
    batch, steps = io_inputs.shape
    psi, full, q, z, io, alive = buffers
    for block in range(first, last):
        b0 = block * LANES
        start_block(psi, b0, batch, alive)
        live = True  # a block holds at least one sequence
        for t in range(steps):
            if not live:
                break
            live = advance(psi, full, q, z, io, alive, b0, t, io_inputs, io_targets, draw, uniforms, ops, tabs, num_in,
                     probs, outcomes, taken, acceptance, status, status_step)
