"""How a neuron's ancilla measurements are handled: the neuron mode, parsed once.

``postselect``
    Every ancilla is measured and reset; a shot is accepted when every flag reads 0.
``rus:R``
    Repeat until success, unrolled: a failed block is corrected and retried up to ``R`` times
    (see :mod:`qrnn_qiskit.circuits.rus`; the flags that decide acceptance are
    :func:`rus_acceptance_mask`). ``rus`` alone means ``rus:1``.
``amplify:L``
    Fixed-point amplitude amplification of every level, ``L`` uses of its attempt; the ancillas
    are measured once at the neuron's end and a shot is accepted when all read 0.
``keep``
    The postselect circuit with every shot kept: a neuron whose ancilla reads 1 is not corrected,
    and its failed branch stays in the state. No flag decides acceptance, so nothing is discarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.core.schedule import FixedPointSchedule

__all__ = ["NeuronMode", "NEURON_MODES", "rus_acceptance_mask", "rus_flags_per_neuron"]

NEURON_MODES = ("postselect", "rus", "amplify", "keep")
_SPELLING = re.compile(r"^(postselect|rus|amplify|keep)(?::(-?\d+))?$")
#: ``amplify`` without ``:L``
DEFAULT_USES = 5


#: the largest amplify:L (uses of each level's attempt) and rus:R (retries) accepted
MAX_USES = 99
MAX_RETRIES = 64

@dataclass(frozen=True)
class NeuronMode:
    """A neuron mode: ``kind`` (``"postselect"``, ``"rus"``, ``"amplify"`` or ``"keep"``),
    ``retries`` (rus only) and ``uses`` (amplify only: ``L``).

    Build one with :meth:`parse` from its spelling (``"postselect"``, ``"rus"``, ``"rus:3"``,
    ``"amplify"``, ``"amplify:7"``, ``"keep"``); ``str(mode)`` gives the spelling back.

    Raises:
        ValueError: for an unknown kind, retries or uses where the kind takes none, fewer than one
            rus retry, or an amplify ``L`` that is not odd and at least 3.
    """

    kind: str = "postselect"
    retries: int = 0
    uses: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NEURON_MODES:
            raise ValueError(f"Unknown neuron mode kind {self.kind!r}; expected one of {', '.join(NEURON_MODES)}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, (int, np.integer)):
            raise TypeError(f"retries must be an integer, got {type(self.retries).__name__} {self.retries!r}.")
        if isinstance(self.uses, bool) or not isinstance(self.uses, (int, np.integer)):
            raise TypeError(f"uses must be an integer, got {type(self.uses).__name__} {self.uses!r}.")
        if self.kind != "rus" and self.retries != 0:
            raise ValueError(f"{self.kind} mode has no retries, got {self.retries}; use 'rus:{self.retries}'.")
        if self.kind == "rus" and self.retries < 1:
            raise ValueError(f"rus needs at least one retry, got rus:{self.retries}; use postselect for none.")
        if self.kind != "amplify" and self.uses != 0:
            raise ValueError(f"{self.kind} mode has no amplification uses, got {self.uses}; use 'amplify:{self.uses}'.")
        if self.kind == "amplify" and (self.uses < 3 or self.uses % 2 == 0):
            raise ValueError(
                f"amplify needs an odd number L >= 3 of uses of each level's attempt, got amplify:{self.uses}; "
                "for example amplify:3, amplify:5 or amplify:7."
            )
        if self.uses > MAX_USES or self.retries > MAX_RETRIES:
            raise ValueError(
                f"{self} is beyond what the circuits and the engine build: amplify:L takes L up to {MAX_USES} (each "
                f"level's gates grow L-fold, per level) and rus:R up to {MAX_RETRIES} retries."
            )
        object.__setattr__(self, "retries", int(self.retries))
        object.__setattr__(self, "uses", int(self.uses))

    @classmethod
    def parse(cls, value: str | NeuronMode) -> NeuronMode:
        """``"postselect"``, ``"rus"`` (one retry), ``"rus:R"``, ``"amplify"`` (``L = 5``) or
        ``"amplify:L"``; a :class:`NeuronMode` passes through.

        Raises:
            ValueError: for any other spelling.
        """
        if isinstance(value, NeuronMode):
            return value
        match = _SPELLING.match(value) if isinstance(value, str) else None
        if not match or (match[1] in ("postselect", "keep") and match[2] is not None):
            raise ValueError(
                f"Unknown neuron mode {value!r}; expected 'postselect', 'rus' or 'rus:R' with R >= 1 retries, "
                "'amplify' or 'amplify:L' with L odd and >= 3, or 'keep'."
            )
        if match[1] in ("postselect", "keep"):
            return cls(match[1])
        if match[1] == "amplify":
            return cls("amplify", uses=DEFAULT_USES if match[2] is None else int(match[2]))
        return cls("rus", 1 if match[2] is None else int(match[2]))

    def __str__(self) -> str:
        if self.kind == "rus":
            return f"rus:{self.retries}"
        return f"amplify:{self.uses}" if self.kind == "amplify" else self.kind

    @property
    def is_rus(self) -> bool:
        return self.kind == "rus"

    @property
    def is_amplify(self) -> bool:
        return self.kind == "amplify"

    @property
    def is_keep(self) -> bool:
        return self.kind == "keep"

    @property
    def discards(self) -> bool:
        """Whether some shots are discarded (every mode but ``keep``)."""
        return self.kind != "keep"

    @property
    def exact_meaning(self) -> NeuronMode:
        """What the exact engine computes for circuits of this mode: the mode itself for postselect
        and amplify; postselection for rus (exact only for basis-state sources, and a lower bound
        of its acceptance)."""
        return NeuronMode() if self.is_rus else self

    @property
    def schedule(self):
        """The :class:`~qrnn_qiskit.core.schedule.FixedPointSchedule` of an amplify mode."""
        if not self.is_amplify:
            raise ValueError(f"neuron mode {self} has no amplification schedule.")
        return FixedPointSchedule(self.uses)

    def flags_per_neuron(self, order: int) -> int:
        """Classical bits one neuron of ``order`` writes."""
        return self.acceptance_mask(order).size

    def acceptance_mask(self, order: int) -> np.ndarray:
        """Boolean mask over one neuron's flag bits: True where the bit must read 0 for acceptance."""
        if self.kind == "postselect":
            return np.ones(2**order - 1, dtype=bool)
        if self.kind == "keep":
            return np.zeros(2**order - 1, dtype=bool)  # the postselect circuit's flags, none deciding
        if self.kind == "amplify":
            return np.ones(order, dtype=bool)  # each ancilla once, at the neuron's end
        return rus_acceptance_mask(order, self.retries)


def _block_mask(level: int, retries: int, retry: bool) -> list[bool]:
    """Which of a block's bits must read 0 for acceptance, in emission order.

    ``retry`` is True for blocks of the first pass (retried) and False inside a retry body.
    """
    inner = _block_mask(level - 1, retries, retry) * 2 if level else []
    if not retry:
        return inner + [True]
    mask = inner + [False]  # a failed first attempt is retried
    for attempt in range(retries):
        mask += (_block_mask(level - 1, retries, False) * 2 if level else []) + [attempt == retries - 1]
    return mask


def rus_acceptance_mask(order: int, retries: int) -> np.ndarray:
    """Boolean mask over one neuron's bits: True where the bit must read 0 for an accepted shot.

    Only the last bit of each retry chain counts (an attempt that is not retried leaves the later
    bits at 0), plus every measurement inside a retry body (those blocks are not retried).
    """
    return np.array(_block_mask(order - 1, retries, True), dtype=bool)


def rus_flags_per_neuron(order: int, retries: int) -> int:
    """Classical bits one neuron writes in ``rus:retries`` mode."""
    return len(_block_mask(order - 1, retries, True))
