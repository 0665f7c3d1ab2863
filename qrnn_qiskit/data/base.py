"""Datasets of the paper, with the reference implementation's targets and scoring rules.

A dataset yields sequences of ``L`` tokens ``inputs`` and ``targets``. As in the reference, input
``t`` predicts target ``t + 1`` (``t = 0 .. L-2``), so the engine runs ``L - 1`` steps on
``inputs[:, :-1]`` with teacher forcing on ``targets[:, 1:]``. :meth:`Dataset.scored` marks the
engine steps whose prediction enters the loss and the accuracy; every other step is postselected
on its target, in training and at evaluation alike.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SPLITS", "Dataset", "Labelled", "SequenceBatch", "bits_to_tokens", "check_batch_size", "checked_length",
           "every_step_scored", "label_word_tokens", "split_indices"]

SPLITS = ("train", "validate", "test")


@dataclass(frozen=True)
class SequenceBatch:
    """``inputs`` and ``targets`` of shape ``(B, L)``; ``labels`` the class of each sequence (or -1)."""

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray

    def engine_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs[:, :-1], targets[:, 1:])``: what the engine runs, one step per prediction."""
        return self.inputs[:, :-1], self.targets[:, 1:]

    def first(self, limit: int | None) -> SequenceBatch:
        """The first ``limit`` sequences ; all of them when ``limit`` is None."""
        if limit is None:
            return self
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"limit must be >= 1 sequences, got {limit!r}.")
        return SequenceBatch(self.inputs[:limit], self.targets[:limit], self.labels[:limit])


class Dataset:
    """Base class. Subclasses set :attr:`name`, :attr:`input_width`, :attr:`sequence_length`."""

    name: str
    input_width: int
    sequence_length: int
    num_classes: int = 0  # 0: not a classification set

    def scored(self) -> np.ndarray:
        """Boolean mask over the ``L - 1`` engine steps whose prediction enters the loss."""
        return np.ones(self.sequence_length - 1, dtype=bool)

    def ignored(self, targets: np.ndarray) -> np.ndarray:
        """``(B, L-1)`` mask of "don't care" steps given the engine targets ``(B, L-1)``: they are
        postselected on their target even at evaluation (the reference's
        ``ignore_output_at_step``). By default the unscored steps."""
        return np.broadcast_to(~self.scored(), (targets.shape[0], self.sequence_length - 1)).copy()

    def sampled(self, targets: np.ndarray) -> np.ndarray:
        """``(B, L-1)`` mask of the steps whose io outcome is sampled at evaluation, given the
        engine targets ``(B, L-1)``."""
        return self.scored()[None, :] & ~self.ignored(targets)

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


def every_step_scored(dataset: Dataset) -> Dataset:
    """A view of ``dataset`` (its data shared) whose loss and figures count every step's prediction
    and that has no "don't care" steps: how the paper trained its classical DNA baselines."""
    view = copy.copy(dataset)
    # instance attributes come before the class's methods, for the dataset's own calls as well
    view.scored = lambda: np.ones(dataset.sequence_length - 1, dtype=bool)
    view.ignored = lambda targets: np.zeros((np.shape(targets)[0], dataset.sequence_length - 1), dtype=bool)
    return view


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def bits_to_tokens(bits: np.ndarray) -> np.ndarray:
    """Tokens from bits along the last axis, first bit most significant (io lane 0)."""
    width = bits.shape[-1]
    return (bits * (1 << np.arange(width - 1, -1, -1))).sum(axis=-1).astype(np.int64)


def label_word_tokens(label: int, label_bits: int, width: int) -> list[int]:
    """The reference's ``pad_and_chunk(int_to_bitword(label, label_bits), width)``: MSB first,
    zero-padded on the left to a multiple of ``width``, split into ``width``-bit words."""
    words = math.ceil(label_bits / width)
    return [(label >> (width * (words - 1 - k))) & ((1 << width) - 1) for k in range(words)]


def checked_length(dataset: Dataset, sequence_length: int, minimum: int) -> int:
    if sequence_length < minimum:
        raise ValueError(f"sentence_length (the sequence length) must be >= {minimum} for {dataset.name}, got "
                         f"{sequence_length}.")
    return int(sequence_length)


def split_indices(count: int, seed: int, fractions=(0.6, 0.2)) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    a = int(round(fractions[0] * count))
    b = a + int(round(fractions[1] * count))
    return {"train": order[:a], "validate": order[a:b], "test": order[b:]}


class Labelled(Dataset):
    """Classification: each sequence is a feature sequence followed by its label words.

    ``inputs = features + [0] * (label_words - 1) + label`` and ``targets`` is zero except the last
    ``label_words`` positions, which hold the label, so the label is predicted from the features
    and never fed (its last word) - the reference's pairing. For image sets the label overlaps
    the last pixels instead (``overlap=True``): ``inputs`` are the pixels alone.
    Batches draw ``batch_size`` sequences per group (digit) with replacement.
    """

    overlap = False

    def __init__(self, name: str, input_width: int, group_labels: Sequence[int], num_classes: int) -> None:
        self.name = name
        self.input_width = input_width
        self.group_labels = tuple(int(v) for v in group_labels)
        self.num_classes = num_classes
        self.label_bits = max(1, math.ceil(math.log2(num_classes)))
        self.label_words = math.ceil(self.label_bits / input_width)
        self._cache: dict[str, list[np.ndarray]] = {}
        self.sequence_length = self._feature_length() + (0 if self.overlap else 2 * self.label_words - 1)

    def _feature_length(self) -> int:
        raise NotImplementedError

    def _features(self, split: str) -> list[np.ndarray]:
        """Token sequences per group, each ``(n, feature_length)``."""
        raise NotImplementedError

    def _load(self, split: str) -> list[np.ndarray]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        if split not in self._cache:
            self._cache[split] = self._features(split)
        return self._cache[split]

    def scored(self) -> np.ndarray:
        mask = np.zeros(self.sequence_length - 1, dtype=bool)
        mask[-self.label_words :] = True
        return mask

    def _assemble(self, features: list[np.ndarray], groups: list[np.ndarray]) -> SequenceBatch:
        feats = np.concatenate(features)
        labels = np.array([self.group_labels[g] for g in np.concatenate(groups)], dtype=np.int64)
        words = np.array([label_word_tokens(int(v), self.label_bits, self.input_width) for v in labels]).reshape(len(labels), -1)
        if self.overlap:
            inputs = feats
        else:
            pad = np.zeros((len(labels), self.label_words - 1), dtype=np.int64)
            inputs = np.concatenate([feats, pad, words], axis=1)
        targets = np.zeros_like(inputs)
        targets[:, -self.label_words :] = words
        return SequenceBatch(inputs, targets, labels)

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        batch_size = check_batch_size(batch_size)
        # a group absent from a split (possible in a user's data) has nothing to draw: skip it
        present = [(g, data) for g, data in enumerate(self._load(split)) if data.shape[0]]
        feats = [data[rng.integers(0, data.shape[0], batch_size)] for _, data in present]
        return self._assemble(feats, [np.full(batch_size, g) for g, _ in present])

    def split(self, split: str) -> SequenceBatch:
        per_group = self._load(split)
        return self._assemble(per_group, [np.full(d.shape[0], g) for g, d in enumerate(per_group)])
