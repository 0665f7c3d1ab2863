"""A study for the engine's next step: the reverse of the input and work neurons (the costliest loop
of the gradient) in today's block layout against one sequence per vector.

Today's kernels (``qrnn_qiskit/engine/_kernels.py``) keep four sequences side by side, so each
amplitude pair is one vector, but every pair must gather each lane's table entries by its io pattern
and scatter its angle gradient into that pattern's plane. The alternative here keeps one sequence's
amplitudes in order and puts four consecutive pairs in a vector, reading the tables of its one io
pattern packed by pair (``_packed``): no gathers, no scatter; qubits 0 and 1, whose pairs are closer
than four amplitudes, go in blocks of eight amplitudes that the compiler shuffles.

On the mnist01 model's tables and op order, one thread, for one cell step of four sequences (each
with its own io pattern): both versions reverse the 24 neurons from the same states and gradients,
are checked to give the same gradient and angle gradients bit for bit, and are timed with the state
refreshed after every pass (a state reused thousands of times decays into denormal numbers, which
are slow and mislead). Prints one JSON line. This measures the loop alone with its data in the
cache; the whole gradient (``benchmarks/engine_ab.py``) is what decides.

Usage: python benchmarks/kernel_layouts.py [--repeats 11] [--passes 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _prototype():
    from numba import njit, uint64

    @njit(inline="always")
    def four_pairs(state, g, c, s, e, f, d, k, i0, i1, i2, i3, j0, j1, j2, j3):
        """Pairs (i_l, j_l) with table entries k..k+3: every load before any store."""
        a0, a1, a2, a3 = state[i0], state[i1], state[i2], state[i3]
        b0, b1, b2, b3 = state[j0], state[j1], state[j2], state[j3]
        g0, g1, g2, g3 = g[i0], g[i1], g[i2], g[i3]
        h0, h1, h2, h3 = g[j0], g[j1], g[j2], g[j3]
        one, two, three = uint64(1), uint64(2), uint64(3)
        c0, c1, c2, c3 = c[k], c[k + one], c[k + two], c[k + three]
        s0, s1, s2, s3 = s[k], s[k + one], s[k + two], s[k + three]
        e0, e1, e2, e3 = e[k], e[k + one], e[k + two], e[k + three]
        f0, f1, f2, f3 = f[k], f[k + one], f[k + two], f[k + three]
        q0, q1, q2, q3 = d[k], d[k + one], d[k + two], d[k + three]
        d[k], d[k + one], d[k + two], d[k + three] = (
            q0 + ((g0 * a0 + h0 * b0) * e0 + (h0 * a0 - g0 * b0) * f0),
            q1 + ((g1 * a1 + h1 * b1) * e1 + (h1 * a1 - g1 * b1) * f1),
            q2 + ((g2 * a2 + h2 * b2) * e2 + (h2 * a2 - g2 * b2) * f2),
            q3 + ((g3 * a3 + h3 * b3) * e3 + (h3 * a3 - g3 * b3) * f3))
        g[i0], g[i1], g[i2], g[i3] = c0 * g0 + s0 * h0, c1 * g1 + s1 * h1, c2 * g2 + s2 * h2, c3 * g3 + s3 * h3
        g[j0], g[j1], g[j2], g[j3] = c0 * h0 - s0 * g0, c1 * h1 - s1 * g1, c2 * h2 - s2 * g2, c3 * h3 - s3 * g3

    @njit
    def reverse_one(state, g, bit, c, s, e, f, d):
        """One sequence, one neuron; tables and ``d`` indexed by pair."""
        n = uint64(state.shape[0])
        k = uint64(0)
        if bit >= uint64(4):
            for start in range(uint64(0), n, bit << uint64(1)):
                for x0 in range(start, start + bit, uint64(4)):
                    x1 = x0 + bit
                    four_pairs(state, g, c, s, e, f, d, k, x0, x0 + uint64(1), x0 + uint64(2), x0 + uint64(3),
                               x1, x1 + uint64(1), x1 + uint64(2), x1 + uint64(3))
                    k += uint64(4)
        else:
            for m in range(uint64(0), n, uint64(8)):
                if bit == uint64(1):
                    four_pairs(state, g, c, s, e, f, d, k, m, m + uint64(2), m + uint64(4), m + uint64(6),
                               m + uint64(1), m + uint64(3), m + uint64(5), m + uint64(7))
                else:
                    four_pairs(state, g, c, s, e, f, d, k, m, m + uint64(1), m + uint64(4), m + uint64(5),
                               m + uint64(2), m + uint64(3), m + uint64(6), m + uint64(7))
                k += uint64(4)

    @njit
    def step(states, g, bit, k, packed, d, io):
        for b in range(4):
            t = packed[k, io[b]]
            reverse_one(states[b], g[b], bit, t[0], t[1], t[2], t[3], d[b, k, io[b]])

    return _driver(step)


def _block():
    from numba import njit

    from qrnn_qiskit.engine.backends import cpu_gradient as _kernels

    @njit
    def step(state, g, bit, k, tables, d, io):
        _kernels.reverse_lanes(state, g, bit, tables[0][k], tables[1][k], d[k], io)

    return _driver(step)


def _driver(step):
    """``passes`` reverses of the step's input and work neurons, last op first, by ``step``."""
    from numba import njit, uint64

    @njit
    def run(states, g, g_start, ops, tables, d, io, passes):
        kinds, lanes, indices = ops[0], ops[1], ops[2]
        for _ in range(passes):
            g[:, :] = g_start
            for op in range(kinds.shape[0] - 1, -1, -1):
                if kinds[op] == 1:
                    step(states, g, uint64(1) << uint64(lanes[op]), indices[op], tables, d, io)

    return run


def _packed(wtab, dwtab, lanes_of):
    """``packed[k, io, 0..3, j]``: cosine, sine and their derivatives at neuron ``k``'s ``j``-th pair;
    and each neuron's first rows of its pairs."""
    n_neurons, rows, _, patterns = wtab.shape
    packed = np.zeros((n_neurons, patterns, 4, rows // 2))
    firsts = {k: np.array([x for x in range(rows) if not x >> lane & 1]) for k, lane in lanes_of.items()}
    for k, first in firsts.items():
        for io in range(patterns):
            packed[k, io] = [wtab[k, first, 0, io], wtab[k, first, 1, io], dwtab[k, first, 0, io],
                             dwtab[k, first, 1, io]]
    return packed, firsts


def _median_s(fn, args, repeats: int) -> float:
    fn(*args[:-1], 1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / args[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--passes", type=int, default=2000)
    args = parser.parse_args()
    import numba
    from engine import _problem
    from numba.core import config as numba_config

    from qrnn_qiskit.engine import ExactEngine

    numba_config.SLP_VECTORIZE = 1  # as the package's kernels are compiled (compiled._vectorised)
    numba.set_num_threads(1)
    config, params, *_ = _problem(4, 2)
    path = ExactEngine(config, engine="cpu").backend
    tabs, dtabs = path._tables(params, derivatives=True)
    ops = path._ops
    lanes_of = {int(k): int(lane) for kind, lane, k in zip(*ops[:3]) if kind == 1}
    packed, firsts = _packed(tabs[2], dtabs[2], lanes_of)
    rng = np.random.default_rng(0)
    io = np.array([0, 1, 2, 3], np.int64)
    states = rng.standard_normal((4, 1 << config.workspace))
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    g_start = rng.standard_normal(states.shape) * 0.1
    n_neurons = tabs[0].shape[0]

    block, proto = _block(), _prototype()
    # the same numbers: one pass of each from the same states
    g_block, d_block = g_start.T.copy(), np.zeros((n_neurons, 4, states.shape[1], 4))
    block(states.T.copy(), g_block, g_start.T.copy(), ops, (tabs[2], dtabs[2]), d_block, io, 1)
    g_proto, d_proto = g_start.copy(), np.zeros((4, n_neurons, 4, states.shape[1] // 2))
    proto(states.copy(), g_proto, g_start, ops, packed, d_proto, io, 1)
    same = bool(np.array_equal(g_block, g_proto.T))
    for k, rows in firsts.items():
        for b in range(4):
            same &= bool(np.array_equal(d_block[k, io[b], rows, b], d_proto[b, k, io[b]]))
    if not same:
        raise SystemExit("the two layouts disagree: fix the prototype before timing it")

    block_s = _median_s(block, (states.T.copy(), g_block, g_start.T.copy(), ops, (tabs[2], dtabs[2]), d_block, io,
                                args.passes), args.repeats)
    proto_s = _median_s(proto, (states.copy(), g_proto, g_start, ops, packed, d_proto, io, args.passes),
                        args.repeats)
    print(json.dumps({
        "benchmark": "kernel_layouts", "model": "mnist01 (I2 W8 S2 k2 d2)", "neurons_reversed": len(lanes_of),
        "sequences": 4, "threads": 1, "same_bits": same, "repeats": args.repeats, "passes": args.passes,
        "block_layout_us": round(block_s * 1e6, 2), "one_sequence_per_vector_us": round(proto_s * 1e6, 2),
        "ratio": round(block_s / proto_s, 2),
    }))


if __name__ == "__main__":
    main()
