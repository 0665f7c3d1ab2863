"""A researcher's own data: ``--dataset PATH`` with an ``.npz`` or ``.csv`` file.

``.npz`` (read without pickle), one of two forms:

* sequence to sequence: ``inputs`` and ``targets``, integer arrays ``(N, L)``; ``scored``, a
  boolean array ``(L - 1,)`` of the engine steps whose prediction enters the loss (step ``t``
  reads ``inputs[:, t]`` and predicts ``targets[:, t + 1]``; default: every step);
* labelled sequences (classification): ``sequences`` ``(N, F)`` and ``labels`` ``(N,)``; each
  sequence is followed by its label written in ``I``-bit words, as the reference does for MNIST
  (``F`` feature steps, ``LL - 1`` zero words, then the label words; the label is scored).

Optional in both: ``split`` ``(N,)`` with 0/1/2 or ``train``/``validate``/``test`` (default: a
fixed 60/20/20 split), ``input_width`` (default: the bits of the largest token) and, for labels,
``num_classes`` (default: the largest label + 1).

``.csv``: labelled sequences, one per line, ``split,label,x_1,...,x_F`` (``split`` a name or
0/1/2); a first line starting with ``split`` is a header.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.core.io import read_npz
from qrnn_qiskit.data.base import SPLITS, Dataset, Labelled, SequenceBatch, check_batch_size, split_indices

__all__ = ["load_user_dataset", "is_user_dataset", "MAX_TOKEN", "MAX_CLASSES"]

#: a token is written onto at most 8 io qubits
MAX_TOKEN = 255
#: labels are written as tokens after the sequence; more classes than this is not a QRNN task
MAX_CLASSES = 1024


def is_user_dataset(name: str) -> bool:
    """Whether a dataset name is a path to a user's ``.npz`` or ``.csv`` file."""
    return isinstance(name, (str, os.PathLike)) and str(name).lower().endswith((".npz", ".csv"))


def load_user_dataset(path: str | os.PathLike) -> Dataset:
    """The dataset in a user's ``.npz`` or ``.csv`` file (see the module's documentation).

    Raises:
        DatasetError: for a missing or unreadable file, or contents that do not fit the format
            (the message names what was expected and what arrived).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"No dataset file at {path}; expected an .npz or .csv file of token sequences.")
    arrays = _read_csv(path) if path.suffix.lower() == ".csv" else _read_npz(path)
    splits = _splits(path, arrays.get("split"), _rows(path, arrays))
    if _labelled(arrays):
        return UserLabelled(path, arrays, splits)
    return UserSequences(path, arrays, splits)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = read_npz(path, "dataset file", DatasetError)  # never unpickles; refuses non-.npz files by their first bytes
    if not ({"inputs", "targets"} <= set(arrays) or {"sequences", "labels"} <= set(arrays)):
        raise DatasetError(
            f"{path} has the arrays {sorted(arrays)}; expected 'inputs' and 'targets' (sequence to sequence) or "
            "'sequences' and 'labels' (classification)."
        )
    return arrays


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    splits, labels, rows = [], [], []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or (number == 1 and row[0].strip().lower() == "split"):
                    continue
                if rows and len(row) - 2 != len(rows[0]):
                    raise DatasetError(
                        f"{path} line {number}: {len(row) - 2} tokens, but the first sequence has {len(rows[0])}; "
                        "every line must be split,label,x_1,...,x_F with the same F (ragged sequences)."
                    )
                if len(row) < 3:
                    raise DatasetError(f"{path} line {number}: expected split,label,x_1,...,x_F, got {row}.")
                splits.append(row[0].strip())
                try:
                    labels.append(int(row[1]))
                    rows.append([int(v) for v in row[2:]])
                except ValueError as exc:
                    raise DatasetError(f"{path} line {number}: labels and tokens must be integers ({exc}).") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path} is not a readable csv file: {exc}") from None
    if not rows:
        raise DatasetError(f"{path} holds no sequences.")
    return {"sequences": np.array(rows), "labels": np.array(labels), "split": np.array(splits)}


def _labelled(arrays: dict) -> bool:
    """Labelled sequences (not sequence to sequence): what the file holds both of decides."""
    return {"sequences", "labels"} <= set(arrays) and not {"inputs", "targets"} <= set(arrays)


def _rows(path: Path, arrays: dict) -> int:
    first = arrays["sequences"] if _labelled(arrays) else arrays["inputs"]
    if first.ndim != 2 or first.shape[0] == 0 or first.shape[1] == 0:
        raise DatasetError(f"{path}: expected a non-empty 2-D array of token sequences (N, L), got shape {first.shape}.")
    return first.shape[0]


def _splits(path: Path, split, count: int) -> dict[str, np.ndarray]:
    """Row indices per split: from ``split`` (0/1/2 or names), else a fixed 60/20/20 split."""
    if split is None:
        chosen = split_indices(count, 0)
    else:
        split = np.asarray(split)
        if split.shape != (count,):
            raise DatasetError(f"{path}: 'split' must hold one entry per sequence ({count}), got shape {split.shape}.")
        names = np.array([SPLITS[int(v)] if str(v).isdigit() and int(v) < 3 else str(v) for v in split.tolist()])
        unknown = sorted(set(names.tolist()) - set(SPLITS))
        if unknown:
            raise DatasetError(f"{path}: split values must be 0/1/2 or {'/'.join(SPLITS)}, got {unknown}.")
        chosen = {name: np.flatnonzero(names == name) for name in SPLITS}
    for name, rows in chosen.items():
        if rows.size == 0:
            raise DatasetError(
                f"{path}: the {name} split is empty; give it sequences (split value {SPLITS.index(name)} or "
                f"'{name}'), or leave 'split' out for a 60/20/20 split of at least 5 sequences."
            )
    return chosen


def _tokens(path: Path, array: np.ndarray, what: str, width: int | None) -> tuple[np.ndarray, int]:
    """Integer tokens in ``[0, 2**width)`` (``width`` inferred from the largest when None)."""
    if not np.issubdtype(array.dtype, np.integer) and not (
        np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        raise DatasetError(f"{path}: '{what}' must be integer tokens, got dtype {array.dtype}.")
    if array.dtype.kind == "u" and array.size and array.max() > MAX_TOKEN:
        raise DatasetError(f"{path}: '{what}' holds token {array.max()}; tokens are at most {MAX_TOKEN} (8 bits).")
    if array.dtype.kind == "f" and array.size and np.abs(array).max() > MAX_TOKEN:
        raise DatasetError(f"{path}: '{what}' holds token {np.abs(array).max():g}; tokens are 0..{MAX_TOKEN} (8 bits).")
    array = array.astype(np.int64)
    if array.min() < 0:
        raise DatasetError(f"{path}: '{what}' holds negative tokens (smallest {array.min()}); tokens are 0..2**I - 1.")
    if array.max() > MAX_TOKEN:
        raise DatasetError(
            f"{path}: '{what}' holds token {array.max()} ({int(array.max()).bit_length()} bits); a token has at most 8 "
            f"bits (0..{MAX_TOKEN}), one per io qubit. Split wider values into several steps."
        )
    width = max(1, int(array.max()).bit_length()) if width is None else width
    if array.max() >= 1 << width:
        raise DatasetError(
            f"{path}: '{what}' holds token {array.max()}, but input_width={width} allows 0..{(1 << width) - 1}; "
            "raise input_width or drop the key to infer it."
        )
    return array, width


def _width(path: Path, arrays: dict) -> int | None:
    if "input_width" not in arrays:
        return None
    return _small_int(path, arrays, "input_width", 1, 8)


def _small_int(path: Path, arrays: dict, name: str, low: int, high: int) -> int:
    """The one integer in ``arrays[name]``, within ``[low, high]``."""
    value = np.asarray(arrays[name]).reshape(-1)
    if value.size != 1 or value.dtype.kind not in "iu" or not low <= int(value[0]) <= high:
        raise DatasetError(f"{path}: '{name}' must be one integer from {low} to {high}, got {value[:4]!r} "
                           f"(dtype {value.dtype}).")
    return int(value[0])


class UserSequences(Dataset):
    """Sequence-to-sequence data from a user's ``.npz`` (``inputs``, ``targets``, ``scored``)."""

    def __init__(self, path: Path, arrays: dict, splits: dict[str, np.ndarray]) -> None:
        inputs, targets = arrays["inputs"], arrays["targets"]
        if targets.shape != inputs.shape:
            raise DatasetError(f"{path}: 'targets' must have the shape of 'inputs' {inputs.shape}, got {targets.shape}.")
        if inputs.shape[1] < 2:
            raise DatasetError(f"{path}: sequences need at least 2 steps (one prediction), got {inputs.shape[1]}.")
        width = _width(path, arrays)
        if width is None:  # inputs and targets share the io lanes: the wider decides
            width = max(_tokens(path, inputs, "inputs", None)[1], _tokens(path, targets, "targets", None)[1])
        self.inputs = _tokens(path, inputs, "inputs", width)[0]
        self.targets = _tokens(path, targets, "targets", width)[0]
        self.name, self.input_width, self.sequence_length = str(path), width, inputs.shape[1]
        scored = np.ones(self.sequence_length - 1, bool) if "scored" not in arrays else np.asarray(arrays["scored"])
        if scored.dtype != bool or scored.shape != (self.sequence_length - 1,) or not scored.any():
            raise DatasetError(
                f"{path}: 'scored' must be booleans for the {self.sequence_length - 1} engine steps with at least one "
                f"True, got dtype {scored.dtype} and shape {scored.shape}."
            )
        self._scored, self._splits = scored, splits

    def scored(self) -> np.ndarray:
        return self._scored.copy()

    def _take(self, rows: np.ndarray) -> SequenceBatch:
        return SequenceBatch(self.inputs[rows], self.targets[rows], np.full(len(rows), -1))

    def split(self, split: str) -> SequenceBatch:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        return self._take(self._splits[split])

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        rows = self._splits[split]
        return self._take(rows[rng.integers(0, rows.size, check_batch_size(batch_size))])


class UserLabelled(Labelled):
    """Labelled sequences from a user's file, laid out as the reference lays out MNIST features."""

    def __init__(self, path: Path, arrays: dict, splits: dict[str, np.ndarray]) -> None:
        labels = np.asarray(arrays["labels"])
        sequences, width = _tokens(path, np.asarray(arrays["sequences"]), "sequences", _width(path, arrays))
        if labels.shape != (sequences.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(
                f"{path}: 'labels' must be one integer per sequence ({sequences.shape[0]}), got dtype {labels.dtype} "
                f"and shape {labels.shape}."
            )
        if labels.size and labels.max() >= MAX_CLASSES:
            raise DatasetError(f"{path}: 'labels' holds label {labels.max()}; at most {MAX_CLASSES} classes are supported.")
        classes = _small_int(path, arrays, "num_classes", 2, MAX_CLASSES) if "num_classes" in arrays else \
            int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= classes or classes < 2:
            raise DatasetError(
                f"{path}: labels must lie in 0..{classes - 1} (num_classes={classes}, at least 2), got labels in "
                f"[{labels.min()}, {labels.max()}]."
            )
        self._sequences, self._labels, self._splits = sequences, labels.astype(np.int64), splits
        self._feature_steps = sequences.shape[1]
        super().__init__(str(path), width, range(classes), classes)

    def _feature_length(self) -> int:
        return self._feature_steps

    def _features(self, split: str) -> list[np.ndarray]:
        rows = self._splits[split]
        return [self._sequences[rows][self._labels[rows] == c] for c in self.group_labels]
