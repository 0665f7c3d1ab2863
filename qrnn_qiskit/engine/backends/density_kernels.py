"""Compiled kernels of the density backend: a one-lane channel applied to a batch of density matrices.

``sum_f K_f rho K_f^dagger``, each ``K_f`` a 2x2 map on one lane that depends on the pattern of the
other lanes (a neuron's instrument is controlled by them), is the density path's inner loop: about
70 % of a noisy gradient pass in numpy, where broadcasting over seven-axis views makes a temporary
array per map and per output bit. The kernel reads each 2x2 block of ``rho`` once, applies every map
to it in registers and writes the block once, one sequence after another (threads over sequences were slower on these two shared cores); ``benchmarks/density.py``
measures the two side by side (``--engine numpy`` keeps the numpy path).

``rho`` is ``(B, N, N)``; a row or column index is ``h * 2 * lo + bit * lo + l`` with ``lo = 2**lane``;
``kraus`` is ``(F, hi, lo, 2, 2)``, ``[out, in]`` per pattern ``(h, l)`` of the other lanes. Real and
complex arrays of either precision compile to their own specialisations (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["apply_channel"]


@njit(cache=True)
def _apply_channel(rho, kraus, lane, out):  # pragma: no cover - compiled; equal to the numpy path (tested)
    batch, size = rho.shape[0], rho.shape[1]
    lo = 1 << lane
    maps = kraus.shape[0]
    for b in range(batch):
        for r in range(size):
            if (r >> lane) & 1:
                continue
            rh, rl = r >> (lane + 1), r & (lo - 1)
            for c in range(size):
                if (c >> lane) & 1:
                    continue
                ch, cl = c >> (lane + 1), c & (lo - 1)
                a00, a01 = rho[b, r, c], rho[b, r, c | lo]
                a10, a11 = rho[b, r | lo, c], rho[b, r | lo, c | lo]
                o00 = o01 = o10 = o11 = a00 * 0
                for f in range(maps):
                    k00, k01 = kraus[f, rh, rl, 0, 0], kraus[f, rh, rl, 0, 1]
                    k10, k11 = kraus[f, rh, rl, 1, 0], kraus[f, rh, rl, 1, 1]
                    m00, m01 = np.conj(kraus[f, ch, cl, 0, 0]), np.conj(kraus[f, ch, cl, 0, 1])
                    m10, m11 = np.conj(kraus[f, ch, cl, 1, 0]), np.conj(kraus[f, ch, cl, 1, 1])
                    t00, t01 = k00 * a00 + k01 * a10, k00 * a01 + k01 * a11
                    t10, t11 = k10 * a00 + k11 * a10, k10 * a01 + k11 * a11
                    o00 += t00 * m00 + t01 * m01
                    o01 += t00 * m10 + t01 * m11
                    o10 += t10 * m00 + t11 * m01
                    o11 += t10 * m10 + t11 * m11
                out[b, r, c], out[b, r, c | lo] = o00, o01
                out[b, r | lo, c], out[b, r | lo, c | lo] = o10, o11


def apply_channel(rho: np.ndarray, kraus: np.ndarray, lane: int, num_lanes: int) -> np.ndarray:
    """``sum_f K_f rho K_f^dagger`` on ``lane`` (see the module); ``rho`` ``(B, N, N)``, ``kraus``
    ``(F, hi, lo, 2, 2)`` or broadcastable to it. Returns an array of ``rho``'s dtype (complex maps
    on a real state keep the real part, as the numpy path does)."""
    hi, lo = 1 << (num_lanes - 1 - lane), 1 << lane
    dtype = np.result_type(rho, kraus)
    maps = np.ascontiguousarray(np.broadcast_to(kraus, (kraus.shape[0], hi, lo, 2, 2)), dtype=dtype)
    state = np.ascontiguousarray(rho, dtype=dtype)
    out = np.empty_like(state)
    _apply_channel(state, maps, lane, out)
    return out.astype(rho.dtype, copy=False) if out.dtype != rho.dtype else out
