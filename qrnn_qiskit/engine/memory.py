"""One memory estimate for every command that runs the exact engine, checked before anything of
that size is allocated.

The estimate counts, for a batch of ``B`` sequences of ``T`` steps on ``I + W`` lanes:

* parameters: the vector, its gradient, the optimiser's moments and one gradient row a sequence;
* tables: each neuron's angle, cosine and sine for every basis state, and their gradient;
* states: the workspace state at the start of every step (kept for the reverse pass) and a few
  full states as working buffers; on the density path ``4**(I+W)`` numbers a sequence instead, for
  the sequences it takes at once;
* trajectories: the sampled pure states of ``trajectories`` per sequence;
* results: probabilities, outcomes and acceptances a step.

It is an upper bound of the engine's own arrays (NumPy's and the kernels' temporaries come on
top), compared against 80 % of the memory available when the command starts, or
``QRNN_MEMORY_LIMIT`` (bytes, or with a ``K``/``M``/``G``/``T`` suffix) where set.
"""

from __future__ import annotations

import os
import re

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError

__all__ = ["MemoryLimitError", "estimate_bytes", "memory_limit", "check_memory", "density_bytes"]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryLimitError(QRNNError):
    """A run would need more memory than the machine (or ``QRNN_MEMORY_LIMIT``) allows."""


#: sequences a thread of the compiled kernels holds at once (``cpu_kernels.LANES``; a test keeps
#: the two equal, without this module importing numba)
CPU_BLOCK = 8


def density_bytes(num_lanes: int, batch: int, complex_amplitudes: bool = False) -> int:
    """Bytes of one batch's density states: ``batch * 4**num_lanes`` numbers."""
    return batch * (4**num_lanes) * (16 if complex_amplitudes else 8)


def memory_limit() -> int:
    """Bytes a run may use: ``QRNN_MEMORY_LIMIT`` where set, else 80 % of the memory available now
    (``MemAvailable`` on Linux, else the free physical pages), so a run never pushes the
    machine's other work into swap or the out-of-memory killer.

    Raises:
        ValueError: for a ``QRNN_MEMORY_LIMIT`` that is not a size.
    """
    text = os.environ.get("QRNN_MEMORY_LIMIT", "").strip()
    if text:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, re.IGNORECASE)
        if not match:
            raise ValueError(f"QRNN_MEMORY_LIMIT must be a size such as 8G or 8589934592, got {text!r}.")
        return int(float(match[1]) * _UNITS[match[2].upper()])
    return int(0.8 * _available())


def _available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - no sysconf (Windows)
        return 8 * 2**30


def estimate_bytes(config: QRNNConfig, batch: int, steps: int, *, density: bool = False, complex_amplitudes: bool = False,
                   block: int | None = None, trajectories: int | None = None, gradient: bool = True,
                   path: str = "numpy") -> dict[str, int]:
    """The engine's arrays for ``batch`` sequences of ``steps`` steps, by part (see the module),
    with ``total``. ``density``: the density path, taking ``block`` sequences at once (default all).
    ``path``: ``numpy`` keeps every sequence's states at once; the compiled ``cpu`` kernels one
    block of ``CPU_BLOCK`` sequences a thread, with that block's angle gradients per pattern;
    ``gpu`` keeps them in device memory (not counted here)."""
    lanes, number = config.num_lanes, 16 if complex_amplitudes else 8
    full, work = 1 << lanes, 1 << config.workspace
    parts = {
        "parameters": config.num_parameters * 8 * (4 + (batch if gradient else 0)),
        # angles, cosines, sines, their powers and per-target layouts (plan.py), and the angles'
        # gradient: 18 numbers a neuron and pattern, as measured (peak RSS of one training step,
        # I+W = 16 and 18: 2.2x the 8 counted by array) rather than counted
        "tables": config.num_neurons * full * 8 * (18 if gradient else 12),
        "results": batch * steps * (3 * config.num_outcomes + 4) * 8,
    }
    if density:
        at_once = min(batch, block or batch)
        parts["states"] = density_bytes(lanes, at_once, complex_amplitudes) * (8 if gradient else 3)
    else:
        threads = os.cpu_count() or 1
        at_once = batch if path == "numpy" else min(batch, threads * CPU_BLOCK) if path == "cpu" else 0
        # the workspace state of every step (the reverse pass), full-state buffers, and the numpy
        # path's gradient scattered onto the full pattern space per sequence
        parts["states"] = at_once * ((steps + 1) * work + (6 if gradient else 4) * full) * number
        if path == "cpu" and gradient:  # each block's angle gradients: full and workspace neurons
            parts["states"] += at_once * 2 * config.num_neurons * full * 8
    if trajectories:
        parts["trajectories"] = trajectories * batch * full * 16
    parts["total"] = sum(parts.values())
    return parts


def check_memory(config: QRNNConfig, batch: int, steps: int, *, options: str, **kwargs) -> dict[str, int]:
    """:func:`estimate_bytes`, refused above :func:`memory_limit`; returns the estimate.

    Raises:
        MemoryLimitError: naming the need by part, the limit, and ``options`` (what to lower).
    """
    parts = estimate_bytes(config, batch, steps, **kwargs)
    limit = memory_limit()
    if parts["total"] > limit:
        shown = ", ".join(f"{k} {_size(v)}" for k, v in parts.items() if k != "total" and v >= parts["total"] // 100)
        raise MemoryLimitError(
            f"This needs about {_size(parts['total'])} ({shown}) for {batch} sequence(s) of {steps} steps on I+W = "
            f"{config.num_lanes} lanes, more than the {_size(limit)} allowed (80 % of the memory available now, "
            f"or QRNN_MEMORY_LIMIT). Lower {options}."
        )
    return parts


def _size(count: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _UNITS[unit[0]]
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
