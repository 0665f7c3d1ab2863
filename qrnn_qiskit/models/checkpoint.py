"""Checkpoints: one ``.npz`` file, read without pickle, versioned, written atomically.

Layout: the array ``parameters`` (flat, :mod:`qrnn_qiskit.core.config` layout), optional arrays under
``state/<name>`` (optimizer moments and the like), and ``meta``, the UTF-8 bytes of a JSON object
with ``format`` = ``"qrnn-qiskit-checkpoint"``, ``version``, ``model`` (the configuration) and free
fields (dataset, step, losses, training settings, random state).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.core.io import atomic_write_bytes, read_npz
from qrnn_qiskit.models.registry import config_from_dict

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "FORMAT", "VERSION"]

FORMAT = "qrnn-qiskit-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A model's parameters with its configuration and whatever else a run needs to continue."""

    config: QRNNConfig
    parameters: np.ndarray
    meta: dict = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a crash leaves any previous file intact)."""
    params = checkpoint.config.validate_parameters(checkpoint.parameters)
    meta = {
        **checkpoint.meta,
        "format": FORMAT,
        "version": VERSION,
        "model": checkpoint.config.to_dict(),
    }
    arrays = {"parameters": params, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for name, value in checkpoint.state.items():
        arrays[f"state/{name}"] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: if the file is missing, truncated, not a checkpoint of this package, of a
            newer version, or inconsistent with its own configuration.
    """
    path = Path(path)
    arrays = read_npz(path, "checkpoint")
    if "meta" not in arrays or "parameters" not in arrays:
        hint = ""
        if any(name.startswith("module.") for name in arrays):
            hint = " It looks like a reference PyTorch state dict: convert it with `qrnn import-reference`."
        raise CheckpointError(f"{path} is not a qrnn-qiskit checkpoint (no 'meta'/'parameters' arrays).{hint}")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an unreadable metadata block: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a qrnn-qiskit checkpoint: its meta is a JSON {type(meta).__name__}, "
                              "not an object.")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a qrnn-qiskit checkpoint (format {meta.get('format')!r}).")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {version!r}; this qrnn-qiskit reads versions up to "
            f"{VERSION}. Upgrade qrnn-qiskit to read it."
        )
    _check_meta(path, meta)
    try:
        config = config_from_dict(meta["model"])
        params = config.validate_parameters(arrays.pop("parameters"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an inconsistent model description: {exc}") from exc
    state = {name[len("state/") :]: value for name, value in arrays.items() if name.startswith("state/")}
    return Checkpoint(config=config, parameters=params, meta=meta, state=state)


#: the largest step count a checkpoint may claim (a training run of 10^9 steps is years)
MAX_STEP = 10**9
#: the fields a training run writes, each with what a checkpoint may hold there
_OBJECTS = ("model", "settings", "rng_state", "validation_rng_state", "validation", "reference_settings")


def _check_meta(path: Path, meta: dict) -> None:
    """Refuse meta fields of the wrong type or out of range, naming the field and what is expected."""

    def bad(name: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{path} has a damaged checkpoint: meta field {name!r} is {meta[name]!r:.80}; "
                               f"expected {expected}.")

    for name in _OBJECTS:
        if name in meta and not isinstance(meta[name], dict):
            raise bad(name, "a JSON object")
    if "model" not in meta:
        raise CheckpointError(f"{path} has a damaged checkpoint: its meta has no 'model' field.")
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise bad("step", f"an integer from 0 to {MAX_STEP}")
    seconds = meta.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
        raise bad("seconds", "a finite number of seconds >= 0")
    best = meta.get("best_validation_loss", float("inf"))
    if isinstance(best, bool) or not isinstance(best, (int, float)) or best != best:
        raise bad("best_validation_loss", "a number (Infinity before the first validation), not NaN")
    for name in ("dataset", "kind", "source"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise bad(name, "a string")
    if meta.get("noise") is not None and not isinstance(meta["noise"], dict):
        raise bad("noise", "a JSON object or null")
