"""The fixed-point amplitude amplification schedule of an ``amplify:L`` neuron.

Yoder, Low and Chuang (PRL 113, 210501, 2014; arXiv:1409.3305): with ``U`` one attempt and
``Pi`` the projector on its ancillas reading ``|0...0>``,

    S_t(beta)  = I - (1 - e^{i beta}) Pi
    S_s(alpha) = U [I - (1 - e^{-i alpha}) Pi] U^dagger
    G(alpha, beta) = -S_s(alpha) S_t(beta)
    W_L = G(alpha_l, beta_l) ... G(alpha_1, beta_1) U          (L = 2 l + 1 uses of U or U^dagger)

with ``1/gamma = cosh(arccosh(1/delta) / L)`` and ``alpha_j = -beta_{l-j+1} =
2 arccot(tan(2 pi j / L) sqrt(1 - gamma**2))``. An attempt that succeeds with probability ``p``
succeeds after amplification with ``P_L(p) = 1 - delta**2 T_L(sqrt(1 - p) / gamma)**2`` (``T_L``
the Chebyshev polynomial), at least ``1 - delta**2`` whenever ``p >= 1 - gamma**2``. The circuits
(:mod:`qrnn_qiskit.circuits.amplify`) and the exact engine (:mod:`qrnn_qiskit.engine.amplified`)
both read the angles from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["FixedPointSchedule", "chebyshev"]


def chebyshev(degree: int, x: np.ndarray | float) -> np.ndarray:
    """``T_degree(x)`` for real ``x`` of any size (``cosh`` form beyond ``|x| = 1``)."""
    x = np.asarray(x, dtype=float)
    inside = np.abs(x) <= 1.0
    out = np.empty_like(x)
    out[inside] = np.cos(degree * np.arccos(x[inside]))
    outside = ~inside
    sign = np.where(x[outside] < 0, (-1.0) ** degree, 1.0)
    out[outside] = sign * np.cosh(degree * np.arccosh(np.abs(x[outside])))
    return out


@dataclass(frozen=True)
class FixedPointSchedule:
    """The fixed-point sequence of ``uses`` (odd ``L >= 3``) applications of an attempt whose
    success probability is at least ``p_min``.

    Attributes (derived): ``gamma``, ``delta`` (so ``delta**2`` bounds the failure at
    ``p >= p_min``), ``alphas`` and ``betas`` (``l = (L - 1) / 2`` each, ``G`` applied for
    ``j = 1 .. l`` in that order).
    """

    uses: int
    p_min: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.uses, bool) or not isinstance(self.uses, (int, np.integer)):
            raise TypeError(f"uses must be an odd integer, got {type(self.uses).__name__} {self.uses!r}.")
        if self.uses < 3 or self.uses % 2 == 0:
            raise ValueError(f"uses must be an odd integer >= 3 (L = 2l + 1 uses of the attempt), got {self.uses}.")
        if not 0.0 < self.p_min < 1.0:
            raise ValueError(f"p_min must lie in (0, 1), got {self.p_min}.")

    @cached_property
    def gamma(self) -> float:
        return math.sqrt(1.0 - self.p_min)

    @cached_property
    def delta(self) -> float:
        """``1 / T_L(1 / gamma)``: ``P_L(p) >= 1 - delta**2`` for every ``p >= p_min``."""
        return 1.0 / math.cosh(self.uses * math.acosh(1.0 / self.gamma))

    @cached_property
    def alphas(self) -> tuple[float, ...]:
        l = (self.uses - 1) // 2
        root = math.sqrt(1.0 - self.gamma**2)
        # arccot(x) = atan2(1, x), in (0, pi), also for negative x
        return tuple(2.0 * math.atan2(1.0, math.tan(2.0 * math.pi * j / self.uses) * root) for j in range(1, l + 1))

    @cached_property
    def betas(self) -> tuple[float, ...]:
        alphas = self.alphas
        return tuple(-alphas[len(alphas) - j] for j in range(1, len(alphas) + 1))

    def success(self, p: np.ndarray | float) -> np.ndarray:
        """``P_L(p) = 1 - delta**2 T_L(sqrt(1 - p) / gamma)**2``."""
        p = np.asarray(p, dtype=float)
        return 1.0 - self.delta**2 * chebyshev(self.uses, np.sqrt(1.0 - p) / self.gamma) ** 2
