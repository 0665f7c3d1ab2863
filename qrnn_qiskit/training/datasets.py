"""Datasets of the paper, with the reference implementation's targets and scoring rules.

A dataset yields sequences of ``L`` tokens ``inputs`` and ``targets``. As in the reference, input
``t`` predicts target ``t + 1`` (``t = 0 .. L-2``), so the engine runs ``L - 1`` steps on
``inputs[:, :-1]`` with teacher forcing on ``targets[:, 1:]``. :meth:`Dataset.scored` marks the
engine steps whose prediction enters the loss and the accuracy; every other step is postselected
on its target, in training and at evaluation alike.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import DatasetError

__all__ = ["Dataset", "SequenceBatch", "SimpleSequence", "MNISTCsv", "get_dataset", "DATASETS"]


@dataclass(frozen=True)
class SequenceBatch:
    """``inputs`` and ``targets`` of shape ``(B, L)``; ``labels`` the class of each sequence (or -1)."""

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray

    def engine_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs[:, :-1], targets[:, 1:])``: what the engine runs, one step per prediction."""
        return self.inputs[:, :-1], self.targets[:, 1:]


class Dataset:
    """Base class. Subclasses set :attr:`name`, :attr:`input_width`, :attr:`sequence_length`."""

    name: str
    input_width: int
    sequence_length: int
    num_classes: int = 0  # 0: not a classification set

    def scored(self) -> np.ndarray:
        """Boolean mask over the ``L - 1`` engine steps whose prediction is scored."""
        return np.ones(self.sequence_length - 1, dtype=bool)

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        """A random batch drawn with replacement (per class for classification sets)."""
        raise NotImplementedError

    def split(self, split: str) -> SequenceBatch:
        """Every sequence of a split (for evaluation)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "name": self.name,
            "input_width": self.input_width,
            "sequence_length": self.sequence_length,
            "classes": self.num_classes,
            "scored_steps": int(self.scored().sum()),
        }

    def render(self, tokens: np.ndarray) -> str:
        """A human-readable form of one input sequence."""
        return " ".join(str(int(t)) for t in tokens)


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


class SimpleSequence(Dataset):
    """simple-seq: memorise ``0 1 2 3 0 1 ...`` and ``4 4 4 ...`` (3-bit tokens, all steps scored)."""

    name = "simple-seq"
    input_width = 3

    def __init__(self, sequence_length: int = 20) -> None:
        if sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2 for simple-seq, got {sequence_length}.")
        self.sequence_length = int(sequence_length)
        self._sequences = np.array(
            [[t % 4 for t in range(self.sequence_length)], [4] * self.sequence_length], dtype=np.int64
        )

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        picks = rng.integers(0, 2, _check_batch_size(batch_size))
        seqs = self._sequences[picks]
        return SequenceBatch(seqs, seqs.copy(), np.full(len(picks), -1))

    def split(self, split: str) -> SequenceBatch:
        return SequenceBatch(self._sequences.copy(), self._sequences.copy(), np.full(2, -1))


_SPLITS = ("train", "validate", "test")


class MNISTCsv(Dataset):
    """MNIST from the reference implementation's preprocessed files.

    Each file ``mnist-simple-{digit}[-deskewed]-{split}.csv.gz`` has one image per row: 100 pixel
    codes ``0..7``, the bits of three scanlines (row-major, column-major, rotated), bit value 1 being
    background. Scanlines 0 and 1 make the 2-bit token ``code >> 1``. The targets are zeros except
    the last step, which carries the class index (MSB first, padded to the io width).
    """

    input_width = 2
    sequence_length = 100

    def __init__(self, name: str, digits: Sequence[int], *, deskewed: bool, data_dir: str | os.PathLike | None) -> None:
        self.name = name
        self.digits = tuple(int(d) for d in digits)
        self.num_classes = len(self.digits)
        self.deskewed = deskewed
        if data_dir is None:
            raise DatasetError(
                f"{name} reads the reference csv.gz files; pass --data-dir DIR (the folder holding "
                "mnist-simple-*-{train,validate,test}.csv.gz)."
            )
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DatasetError(f"The data directory {self.data_dir} does not exist.")
        self.label_bits = max(1, math.ceil(math.log2(self.num_classes)))
        if self.label_bits > self.input_width:
            raise DatasetError(f"{name}: {self.num_classes} classes need more than one 2-bit label word.")
        self._cache: dict[str, list[np.ndarray]] = {}

    def _path(self, digit: int, split: str) -> Path:
        suffix = "-deskewed" if self.deskewed else ""
        return self.data_dir / f"mnist-simple-{digit}{suffix}-{split}.csv.gz"

    def _load(self, split: str) -> list[np.ndarray]:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}.")
        if split not in self._cache:
            self._cache[split] = [_read_pixel_csv(self._path(d, split), self.sequence_length) for d in self.digits]
        return self._cache[split]

    def scored(self) -> np.ndarray:
        mask = np.zeros(self.sequence_length - 1, dtype=bool)
        mask[-1] = True
        return mask

    def _assemble(self, images: list[np.ndarray], classes: list[np.ndarray]) -> SequenceBatch:
        codes = np.concatenate(images)
        labels = np.concatenate(classes)
        inputs = codes >> 1  # scanlines 0 and 1: the top two bits of the 3-bit code
        targets = np.zeros_like(inputs)
        targets[:, -1] = labels  # one label word; MSB-first padding puts the class in the low bits
        return SequenceBatch(inputs, targets, labels)

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        batch_size = _check_batch_size(batch_size)
        per_digit = self._load(split)
        images, classes = [], []
        for cls, data in enumerate(per_digit):
            rows = rng.integers(0, data.shape[0], batch_size)
            images.append(data[rows])
            classes.append(np.full(batch_size, cls))
        return self._assemble(images, classes)

    def split(self, split: str) -> SequenceBatch:
        per_digit = self._load(split)
        return self._assemble(per_digit, [np.full(d.shape[0], c) for c, d in enumerate(per_digit)])

    def render(self, tokens: np.ndarray) -> str:
        """The row-major scanline as a 10x10 ASCII image (ink ``#``, background ``.``)."""
        row_major = (np.asarray(tokens)[:100] >> 1) & 1
        return "\n".join("".join("." if b else "#" for b in row_major[r * 10 : r * 10 + 10]) for r in range(10))


def _read_pixel_csv(path: Path, width: int) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"Missing data file {path}; expected the reference's mnist-simple csv.gz files there.")
    rows = []
    try:
        with gzip.open(path, "rt", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row:
                    continue
                if len(row) != width:
                    raise DatasetError(f"{path} line {number}: expected {width} pixel codes, got {len(row)}.")
                try:
                    values = [int(v) for v in row]
                except ValueError as exc:
                    raise DatasetError(f"{path} line {number}: pixel codes must be integers 0-7 ({exc}).") from exc
                rows.append(values)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path} is not a readable gzip csv file: {exc}") from exc
    if not rows:
        raise DatasetError(f"{path} holds no images.")
    data = np.asarray(rows, dtype=np.int64)
    if data.min() < 0 or data.max() > 7:
        raise DatasetError(f"{path}: pixel codes must lie in 0-7, got values in [{data.min()}, {data.max()}].")
    return data


_MNIST = {
    "mnist01": (0, 1),
    "mnist36": (3, 6),
}

DATASETS = ("simple-seq", *sorted(_MNIST), *sorted(f"{k}-ds" for k in _MNIST))


def get_dataset(name: str, *, sentence_length: int | None = None, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Look up a dataset by its reference name.

    Raises:
        ValueError: for an unknown name.
        DatasetError: when its files are missing or malformed.
    """
    if name == "simple-seq":
        return SimpleSequence(sentence_length or 20)
    base, deskewed = (name[:-3], True) if name.endswith("-ds") else (name, False)
    if base in _MNIST:
        return MNISTCsv(name, _MNIST[base], deskewed=deskewed, data_dir=data_dir)
    raise ValueError(f"Unknown dataset {name!r}; available: {', '.join(DATASETS)}.")
