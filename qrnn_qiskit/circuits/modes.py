"""How a neuron's ancilla measurements are handled: the neuron mode, parsed once.

``postselect``
    Every ancilla is measured and reset; a shot is accepted when every flag reads 0.
``rus:R``
    Repeat until success, unrolled: a failed block is corrected and retried up to ``R`` times
    (see :mod:`qrnn_qiskit.circuits.rus`). ``rus`` alone means ``rus:1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["NeuronMode", "NEURON_MODES"]

NEURON_MODES = ("postselect", "rus")
_SPELLING = re.compile(r"^(postselect|rus)(?::(-?\d+))?$")


@dataclass(frozen=True)
class NeuronMode:
    """A neuron mode: ``kind`` (``"postselect"`` or ``"rus"``) and ``retries`` (0 for postselect).

    Build one with :meth:`parse` from its spelling (``"postselect"``, ``"rus"``, ``"rus:3"``);
    ``str(mode)`` gives the spelling back.

    Raises:
        ValueError: for an unknown kind, retries on postselect, or fewer than one rus retry.
    """

    kind: str = "postselect"
    retries: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NEURON_MODES:
            raise ValueError(f"Unknown neuron mode kind {self.kind!r}; expected one of {', '.join(NEURON_MODES)}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, (int, np.integer)):
            raise TypeError(f"retries must be an integer, got {type(self.retries).__name__} {self.retries!r}.")
        if self.kind == "postselect" and self.retries != 0:
            raise ValueError(f"postselect mode has no retries, got {self.retries}; use 'rus:{self.retries}'.")
        if self.kind == "rus" and self.retries < 1:
            raise ValueError(f"rus needs at least one retry, got rus:{self.retries}; use postselect for none.")
        object.__setattr__(self, "retries", int(self.retries))

    @classmethod
    def parse(cls, value: str | NeuronMode) -> NeuronMode:
        """``"postselect"``, ``"rus"`` (one retry) or ``"rus:R"``; a :class:`NeuronMode` passes through.

        Raises:
            ValueError: for any other spelling.
        """
        if isinstance(value, NeuronMode):
            return value
        match = _SPELLING.match(value) if isinstance(value, str) else None
        if not match or (match[1] == "postselect" and match[2] is not None):
            raise ValueError(
                f"Unknown neuron mode {value!r}; expected 'postselect', 'rus' or 'rus:R' with R >= 1 retries."
            )
        if match[1] == "postselect":
            return cls()
        return cls("rus", 1 if match[2] is None else int(match[2]))

    def __str__(self) -> str:
        return self.kind if self.kind == "postselect" else f"rus:{self.retries}"

    @property
    def is_rus(self) -> bool:
        return self.kind == "rus"

    def flags_per_neuron(self, order: int) -> int:
        """Classical bits one neuron of ``order`` writes."""
        return self.acceptance_mask(order).size

    def acceptance_mask(self, order: int) -> np.ndarray:
        """Boolean mask over one neuron's flag bits: True where the bit must read 0 for acceptance."""
        if self.kind == "postselect":
            return np.ones(2**order - 1, dtype=bool)
        from .rus import acceptance_mask

        return acceptance_mask(order, self.retries)
