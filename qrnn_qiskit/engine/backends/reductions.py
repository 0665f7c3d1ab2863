"""The reductions every compiled backend shares, as plain Python: the CPU kernels compile them
with numba's ``njit`` and the CUDA kernels with ``cuda.jit(device=True)``, so both paths reduce in
the same order. Also the status codes the kernels write per sequence."""

from __future__ import annotations

import math

__all__ = ["NEURONS_VANISH", "OK", "OUTCOME_IMPOSSIBLE", "TINY", "draw", "loss_terms", "outcome_weights"]

# status codes written per sequence (raised as QRNNError by the caller)
OK = 0
NEURONS_VANISH = 1
OUTCOME_IMPOSSIBLE = 2
#: a probability at or below this counts as 0
TINY = 1e-300


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
