"""Datasets of the paper, with the reference implementation's targets and scoring rules.

A dataset yields sequences of ``L`` tokens ``inputs`` and ``targets``. As in the reference, input
``t`` predicts target ``t + 1`` (``t = 0 .. L-2``), so the engine runs ``L - 1`` steps on
``inputs[:, :-1]`` with teacher forcing on ``targets[:, 1:]``. :meth:`Dataset.scored` marks the
engine steps whose prediction enters the loss and the accuracy; every other step is postselected
on its target, in training and at evaluation alike.
"""

from __future__ import annotations

import copy
import csv
import gzip
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.errors import DatasetError

__all__ = ["Dataset", "SequenceBatch", "every_step_scored", "get_dataset", "list_datasets", "DATASETS"]


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


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _bits_to_tokens(bits: np.ndarray) -> np.ndarray:
    """Tokens from bits along the last axis, first bit most significant (io lane 0)."""
    width = bits.shape[-1]
    return (bits * (1 << np.arange(width - 1, -1, -1))).sum(axis=-1).astype(np.int64)


def _label_words(label: int, label_bits: int, width: int) -> list[int]:
    """The reference's ``pad_and_chunk(int_to_bitword(label, label_bits), width)``: MSB first,
    zero-padded on the left to a multiple of ``width``, split into ``width``-bit words."""
    words = math.ceil(label_bits / width)
    return [(label >> (width * (words - 1 - k))) & ((1 << width) - 1) for k in range(words)]


def _checked_length(dataset: Dataset, sequence_length: int, minimum: int) -> int:
    if sequence_length < minimum:
        raise ValueError(f"sequence_length must be >= {minimum} for {dataset.name}, got {sequence_length}.")
    return int(sequence_length)


# ----------------------------------------------------------------------------- generated tasks
class _Generated(Dataset):
    """A task whose sequences come from a generator; fixed seeds make the held-out splits."""

    split_sizes = {"validate": 256, "test": 1024}
    minimum_length = 2

    def __init__(self, sequence_length: int) -> None:
        self.sequence_length = _checked_length(self, sequence_length, self.minimum_length)

    def _generate(self, count: int, rng: np.random.Generator) -> SequenceBatch:
        raise NotImplementedError

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        return self._generate(_check_batch_size(batch_size), rng)

    def split(self, split: str) -> SequenceBatch:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}.")
        seed = {"train": 11, "validate": 12, "test": 13}[split]
        return self._generate(self.split_sizes.get(split, 1024), np.random.default_rng([seed, self.sequence_length]))


class _Memorise(Dataset):
    """A fixed list of sequences to memorise (every split is the whole list).

    Training batches are drawn with replacement; a validation or test batch is the whole list, so
    a validation loss never comes from a lucky draw that misses a sequence.
    """

    _sequences: np.ndarray

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        if split != "train":
            _check_batch_size(batch_size)
            return self.split(split)
        picks = rng.integers(0, len(self._sequences), _check_batch_size(batch_size))
        seqs = self._sequences[picks]
        return SequenceBatch(seqs, seqs.copy(), np.full(len(picks), -1))

    def split(self, split: str) -> SequenceBatch:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}.")
        return SequenceBatch(self._sequences.copy(), self._sequences.copy(), np.full(len(self._sequences), -1))


class _Cyclic(_Memorise):
    """Sequences that repeat short patterns (``PATTERNS``, one sequence each) to any length."""

    PATTERNS: tuple[tuple[int, ...], ...]
    default_length: int

    def __init__(self, sequence_length: int | None = None) -> None:
        length = self.default_length if sequence_length is None else sequence_length
        self.sequence_length = _checked_length(self, length, 2)
        self._sequences = np.array(
            [[p[t % len(p)] for t in range(self.sequence_length)] for p in self.PATTERNS], dtype=np.int64
        )


class SimpleSequence(_Cyclic):
    """simple-seq: memorise ``0 1 2 3 0 1 ...`` and ``4 4 4 ...`` (3-bit tokens, all steps scored)."""

    name = "simple-seq"
    input_width = 3
    PATTERNS = ((0, 1, 2, 3), (4,))
    default_length = 20


class SimpleBits(_Cyclic):
    """simple-bits: memorise ``0 1 0 1 ...`` and ``1 1 1 ...`` (1-bit tokens, all steps scored).

    Not in the paper: the 1-bit analogue of simple-seq, small enough (I=1) for models trained on
    sampled circuits. From step 1 on both sequences read the same input 1 at some steps but need
    different answers, so the cell has to remember which sequence it is in.
    """

    name = "simple-bits"
    input_width = 1
    PATTERNS = ((0, 1), (1,))
    default_length = 8


class SimpleQuotes(_Memorise):
    """simple-quotes: memorise six quotations, 5-bit characters, padded with spaces.

    At evaluation, consonant targets are postselected ("advice"); all steps enter the loss.
    """

    name = "simple-quotes"
    input_width = 5
    ALPHABET = "abcdefghijklmnopqrstuvwxyz,.?! \n"
    CONSONANTS = "bcdfghjklmnpqrstvwxyz"
    QUOTES = (
        "to keep your balance, you must keep moving.",
        "be yourself, everyone else is already taken.",
        "the future belongs to those who believe in the beauty of their dreams.",
        "you must be the change you with to see in the world.",
        "the most certain way to succeed is always to try just one more time.",
        "wir muessen wissen, wir werden wissen.",
    )

    def __init__(self) -> None:
        width = max(len(q) for q in self.QUOTES)
        self.sequence_length = width
        self._sequences = np.array([[self.ALPHABET.index(c) for c in q.ljust(width)] for q in self.QUOTES])
        self._consonant = np.zeros(len(self.ALPHABET), bool)
        self._consonant[[self.ALPHABET.index(c) for c in self.CONSONANTS]] = True

    def ignored(self, targets: np.ndarray) -> np.ndarray:
        return self._consonant[np.asarray(targets)]

    def render(self, tokens: np.ndarray) -> str:
        return "".join(self.ALPHABET[int(t)] for t in tokens).replace("\n", "¶")


class ElmanXOR(_Generated):
    """elman-xor: triples ``a b (a xor b)`` as tokens ``[0, bit]``; unpredictable targets are the
    marker ``[1, 0]`` (token 2); only the XOR bits are scored (every third step)."""

    name = "elman-xor"
    input_width = 2

    minimum_length = 3

    def _generate(self, count: int, rng: np.random.Generator) -> SequenceBatch:
        triples = math.ceil(self.sequence_length / 3)
        ab = rng.integers(0, 2, (count, triples, 2))
        inputs = np.concatenate([ab, (ab[..., :1] ^ ab[..., 1:])], axis=2).reshape(count, -1)
        targets = inputs.copy()
        targets[:, 0::3] = 2
        targets[:, 1::3] = 2
        length = self.sequence_length
        return SequenceBatch(inputs[:, :length], targets[:, :length], np.full(count, -1))

    def scored(self) -> np.ndarray:
        mask = np.zeros(self.sequence_length - 1, dtype=bool)
        mask[1::3] = True  # engine step t predicts target t + 1, the XOR bits sit at 2, 5, 8, ...
        return mask


class ElmanLetter(_Generated):
    """elman-letter: random consonants b, d, g expanded to ba, dii, guuu (3-bit letters
    b=100, d=101, g=110, a=000, i=001, u=010); consonant targets become 111 (unpredictable)."""

    name = "elman-letter"
    input_width = 3
    CODES = {"b": 4, "d": 5, "g": 6, "a": 0, "i": 1, "u": 2}
    WORDS = {"b": "ba", "d": "dii", "g": "guuu"}

    minimum_length = 2

    def _generate(self, count: int, rng: np.random.Generator) -> SequenceBatch:
        rows = []
        for _ in range(count):
            consonants = rng.integers(0, 3, self.sequence_length)
            text = "".join(self.WORDS["bdg"[c]] for c in consonants)[: self.sequence_length]
            rows.append([self.CODES[c] for c in text])
        inputs = np.array(rows, dtype=np.int64)
        targets = np.where(inputs >= 4, 7, inputs)
        return SequenceBatch(inputs, targets, np.full(count, -1))

    def render(self, tokens: np.ndarray) -> str:
        letters = {v: k for k, v in self.CODES.items()}
        return "".join(letters.get(int(t), "?") for t in tokens)


class DNA(_Generated):
    """dna: recall a marked base. Bases are 0-3; one position ``p`` in ``[1, L/2)`` holds
    ``base + 4``. Targets are 0 up to the mark and the marked base after it; only the last step is
    scored, every other step is postselected on its target."""

    name = "dna"
    input_width = 3

    minimum_length = 4

    def _generate(self, count: int, rng: np.random.Generator) -> SequenceBatch:
        length = self.sequence_length
        inputs = rng.integers(0, 4, (count, length))
        marks = rng.integers(1, max(2, length // 2), count)
        rows = np.arange(count)
        bases = inputs[rows, marks].copy()
        inputs[rows, marks] += 4
        positions = np.arange(length)[None, :]
        targets = np.where(positions > marks[:, None], bases[:, None], 0)
        return SequenceBatch(inputs, targets, np.full(count, -1))

    def scored(self) -> np.ndarray:
        mask = np.zeros(self.sequence_length - 1, dtype=bool)
        mask[-1] = True
        return mask

    def render(self, tokens: np.ndarray) -> str:
        return "".join("GATC"[t] if t < 4 else "U" + "GATC"[t - 4] for t in (int(v) for v in tokens))


# ----------------------------------------------------------------------------- labelled sets
_SPLITS = ("train", "validate", "test")


class _Labelled(Dataset):
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
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}.")
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
        words = np.array([_label_words(int(v), self.label_bits, self.input_width) for v in labels]).reshape(len(labels), -1)
        if self.overlap:
            inputs = feats
        else:
            pad = np.zeros((len(labels), self.label_words - 1), dtype=np.int64)
            inputs = np.concatenate([feats, pad, words], axis=1)
        targets = np.zeros_like(inputs)
        targets[:, -self.label_words :] = words
        return SequenceBatch(inputs, targets, labels)

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        batch_size = _check_batch_size(batch_size)
        # a group absent from a split (possible in a user's data) has nothing to draw: skip it
        present = [(g, data) for g, data in enumerate(self._load(split)) if data.shape[0]]
        feats = [data[rng.integers(0, data.shape[0], batch_size)] for _, data in present]
        return self._assemble(feats, [np.full(batch_size, g) for g, _ in present])

    def split(self, split: str) -> SequenceBatch:
        per_group = self._load(split)
        return self._assemble(per_group, [np.full(d.shape[0], g) for g, d in enumerate(per_group)])


def _require_dir(name: str, data_dir: str | os.PathLike | None, what: str) -> Path:
    """``data_dir``, or the data cache of ``qrnn datasets fetch`` when it exists."""
    if data_dir is None:
        from qrnn_qiskit.training.fetch import default_data_dir

        cache = default_data_dir()
        if not cache.is_dir():
            raise DatasetError(
                f"{name} reads {what}; pass data_dir, the folder holding them, or download them into the "
                f"cache ({cache}) with `qrnn datasets fetch {name}`."
            )
        return cache
    path = Path(data_dir)
    if not path.is_dir():
        raise DatasetError(f"The data directory {path} does not exist.")
    return path


class MNISTCsv(_Labelled):
    """MNIST from the reference implementation's preprocessed files.

    Each file ``mnist-simple-{digit}[-deskewed]-{split}.csv.gz`` has one image per row: 100 pixel
    codes ``0..7``, the bits of three scanlines (row-major, column-major, rotated), bit value 1 being
    background. The first ``I`` scanlines make the token (``code >> (3 - I)``). The label words
    overlap the last pixel steps. ``generative`` (mnist01-gen) replaces pixel 0 by the label and
    scores every step of the image itself.
    """

    overlap = True

    def __init__(
        self,
        name: str,
        digits: Sequence[int],
        *,
        labels: Sequence[int] | None = None,
        num_classes: int | None = None,
        scanlines: int = 2,
        deskewed: bool = False,
        generative: bool = False,
        data_dir: str | os.PathLike | None,
    ) -> None:
        self.digits = tuple(int(d) for d in digits)
        self.deskewed = deskewed
        self.generative = generative
        self.scanlines = scanlines
        self.data_dir = _require_dir(name, data_dir, "the reference's mnist-simple csv.gz files")
        labels = tuple(range(len(self.digits))) if labels is None else tuple(labels)
        super().__init__(name, scanlines, labels, num_classes or len(set(labels)))

    def _feature_length(self) -> int:
        return 100

    def files(self) -> list[str]:
        """The data files this set reads."""
        suffix = "-deskewed" if self.deskewed else ""
        return [f"mnist-simple-{d}{suffix}-{split}.csv.gz" for d in self.digits for split in _SPLITS]

    def _features(self, split: str) -> list[np.ndarray]:
        suffix = "-deskewed" if self.deskewed else ""
        out = []
        for digit in self.digits:
            codes = _read_int_csv(self.data_dir / f"mnist-simple-{digit}{suffix}-{split}.csv.gz", 100, 7)
            out.append(codes >> (3 - self.scanlines))
        return out

    def scored(self) -> np.ndarray:
        if self.generative:
            return np.ones(self.sequence_length - 1, dtype=bool)
        return super().scored()

    def _assemble(self, features: list[np.ndarray], groups: list[np.ndarray]) -> SequenceBatch:
        batch = super()._assemble(features, groups)
        if not self.generative:
            return batch
        inputs = batch.inputs.copy()
        inputs[:, 0] = batch.labels  # the label [0, b] replaces pixel 0; the image is the target
        return SequenceBatch(inputs, inputs.copy(), batch.labels)

    def render(self, tokens: np.ndarray) -> str:
        """The row-major scanline as a 10x10 ASCII image (ink ``#``, background ``.``)."""
        row_major = (np.asarray(tokens)[:100] >> (self.scanlines - 1)) & 1
        return "\n".join("".join("." if b else "#" for b in row_major[r * 10 : r * 10 + 10]) for r in range(10))


class MNISTFeatures(_Labelled):
    """All ten digits from quantised features: ``pca`` (one principal component per step, its
    top ``R`` bits; ``I = R``), ``umap`` or ``tsne`` (bit-plane ``k`` of all ``D`` coordinates at step
    ``k``, for the top ``R`` bits; ``I = D``). Files ``mnist-pca-8bit-{d}-{split}``,
    ``mnist-umap-{D}-{d}-{split}``, ``mnist-tsne-{D}-{d}-{split}``.

    PCA sequences are laid out as :class:`_Labelled` says. UMAP and t-SNE follow the reference's
    own layout (``mnistumap.py`` at 400a5eb, ``mnisttsne.py`` before 957a962): with ``LL`` label
    words, ``inputs = planes + [0] * (LL - 1)`` and ``targets = [0] * (R - 1) + label words``, so
    with the offset-by-one pairing the first label word is predicted right after bit-plane
    ``R - 1`` is read (with one label word the last bit-plane is never read), and label words are
    never fed back.
    """

    def __init__(self, name: str, kind: str, *, bits: int, dims: int, data_dir: str | os.PathLike | None) -> None:
        self.kind, self.bits, self.dims = kind, bits, dims
        self.data_dir = _require_dir(name, data_dir, f"the reference's mnist-{kind} csv.gz files")
        if not 1 <= bits <= 8:
            raise ValueError(f"{name}: the number of bits R must be in 1..8, got {bits}.")
        width = bits if kind == "pca" else dims
        super().__init__(name, width, range(10), 10)
        if kind != "pca":  # the reference's layout: R + LL - 1 words
            self.sequence_length = self.bits + self.label_words - 1
            if self.sequence_length < 2:
                raise ValueError(f"{name}: R + label words - 1 must be >= 2 steps, got {self.sequence_length}.")

    def _feature_length(self) -> int:
        return self.dims if self.kind == "pca" else self.bits

    def _stem(self) -> str:
        return "mnist-pca-8bit" if self.kind == "pca" else f"mnist-{self.kind}-{self.dims}"

    def files(self) -> list[str]:
        """The data files this set reads."""
        return [f"{self._stem()}-{digit}-{split}.csv.gz" for digit in range(10) for split in _SPLITS]

    def _features(self, split: str) -> list[np.ndarray]:
        out = []
        for digit in range(10):
            path = self.data_dir / f"{self._stem()}-{digit}-{split}.csv.gz"
            if self.kind == "pca":
                out.append(_read_int_csv(path, 8, 255)[:, : self.dims] >> (8 - self.bits))
            else:
                values = _read_int_csv(path, self.dims, 255)
                planes = np.stack([(values >> (7 - k)) & 1 for k in range(self.bits)], axis=1)  # (n, R, D)
                out.append(_bits_to_tokens(planes))
        return out

    def _assemble(self, features: list[np.ndarray], groups: list[np.ndarray]) -> SequenceBatch:
        if self.kind == "pca":
            return super()._assemble(features, groups)
        planes = np.concatenate(features)
        labels = np.array([self.group_labels[g] for g in np.concatenate(groups)], dtype=np.int64)
        words = np.array([_label_words(int(v), self.label_bits, self.input_width) for v in labels]).reshape(len(labels), -1)
        inputs = np.concatenate([planes, np.zeros((len(labels), self.label_words - 1), dtype=np.int64)], axis=1)
        targets = np.concatenate([np.zeros((len(labels), self.bits - 1), dtype=np.int64), words], axis=1)
        return SequenceBatch(inputs, targets, labels)


def _read_int_csv(path: Path, width: int, maximum: int) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(
            f"Missing data file {path}; expected the reference's csv.gz files there "
            "(`qrnn datasets fetch NAME --dir FOLDER` downloads them)."
        )
    rows = []
    try:
        with gzip.open(path, "rt", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row:
                    continue
                if len(row) != width:
                    raise DatasetError(f"{path} line {number}: expected {width} values, got {len(row)}.")
                try:
                    rows.append([int(v) for v in row])
                except ValueError as exc:
                    raise DatasetError(f"{path} line {number}: values must be integers 0-{maximum} ({exc}).") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path} is not a readable gzip csv file: {exc}") from exc
    if not rows:
        raise DatasetError(f"{path} holds no rows.")
    data = np.asarray(rows, dtype=np.int64)
    if data.min() < 0 or data.max() > maximum:
        raise DatasetError(f"{path}: values must lie in 0-{maximum}, got values in [{data.min()}, {data.max()}].")
    return data


# ----------------------------------------------------------------------------- raw images
def _scan_images(binary: np.ndarray) -> np.ndarray:
    """Tokens of binary images ``(n, h, w)`` (1 = ink): row-major and column-major scanlines,
    bit value 1 being background, scanline 0 the most significant bit."""
    background = 1 - binary
    row_major = background.reshape(len(binary), -1)
    col_major = background.transpose(0, 2, 1).reshape(len(binary), -1)
    return (row_major << 1) | col_major


def _split_indices(count: int, seed: int, fractions=(0.6, 0.2)) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    a = int(round(fractions[0] * count))
    b = a + int(round(fractions[1] * count))
    return {"train": order[:a], "validate": order[a:b], "test": order[b:]}


class _ImageSet(_Labelled):
    overlap = True

    def __init__(self, name: str, digits: Sequence[int], labels: Sequence[int], num_classes: int, side: int) -> None:
        self.digits = tuple(digits)
        self._side = side
        super().__init__(name, 2, labels, num_classes)

    def _feature_length(self) -> int:
        return self._side * self._side

    def render(self, tokens: np.ndarray) -> str:
        row_major = (np.asarray(tokens)[: self._side**2] >> 1) & 1
        side = self._side
        return "\n".join("".join("." if b else "#" for b in row_major[r * side : (r + 1) * side]) for r in range(side))


class SklearnDigits(_ImageSet):
    """scikit-learn's bundled 8x8 handwritten digits, binarised (value > 8 is ink) and scanned
    row-major and column-major like the reference's MNIST: 64 steps of 2-bit tokens. Each digit's
    images are split 60/20/20 into train/validate/test with a fixed seed. Needs the ``digits``
    extra (scikit-learn)."""

    def __init__(self, name: str, digits: Sequence[int]) -> None:
        labels = range(len(digits))
        super().__init__(name, digits, labels, len(digits), 8)

    def _features(self, split: str) -> list[np.ndarray]:
        from qrnn_qiskit.core import optionals

        optionals.require("sklearn", "the digits datasets")
        from sklearn.datasets import load_digits

        data = load_digits()
        images = (data.images > 8).astype(np.int64)
        out = []
        for digit in self.digits:
            mine = images[data.target == digit]
            out.append(_scan_images(mine[_split_indices(len(mine), 1000 + digit)[split]]))
        return out


class MNISTIdx(_ImageSet):
    """MNIST from the standard IDX files (``train-images-idx3-ubyte[.gz]``, ...), preprocessed as
    the reference did: crop the central 20x20, resize to 10x10 (2x2 means), binarise at 0.5, scan
    row-major and column-major. Validation is the last 500 training images of each digit."""

    def __init__(self, name: str, digits: Sequence[int], *, data_dir: str | os.PathLike | None) -> None:
        self.data_dir = _require_dir(name, data_dir, "the MNIST IDX files")
        super().__init__(name, digits, range(len(digits)), len(digits), 10)

    def _features(self, split: str) -> list[np.ndarray]:
        prefix = "t10k" if split == "test" else "train"
        images = _read_idx(self._find(f"{prefix}-images-idx3-ubyte"), 3)
        labels = _read_idx(self._find(f"{prefix}-labels-idx1-ubyte"), 1)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise DatasetError(
                f"{self.data_dir}: expected 28x28 images with one label each, got images {images.shape} "
                f"and labels {labels.shape}."
            )
        small = images[:, 4:24, 4:24].reshape(-1, 10, 2, 10, 2).mean(axis=(2, 4)) / 255.0
        binary = (small > 0.5).astype(np.int64)
        out = []
        for digit in self.digits:
            mine = binary[labels == digit]
            if split != "test":
                mine = mine[-500:] if split == "validate" else mine[:-500]
            out.append(_scan_images(mine))
        return out

    def files(self) -> list[str]:
        """The data files this set reads (``qrnn datasets fetch`` brings the gzipped ones)."""
        return [f"{p}-{kind}.gz" for p in ("train", "t10k") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]

    def _find(self, stem: str) -> Path:
        for candidate in (self.data_dir / stem, self.data_dir / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        raise DatasetError(
            f"Missing {stem}[.gz] in {self.data_dir} (`qrnn datasets fetch {self.name} --dir FOLDER` downloads it)."
        )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path} is not readable: {exc}") from exc
    if len(raw) < 4 + 4 * ndim or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s).")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated: header says {shape}, found {body.size} values.")
    return body.reshape(shape).astype(np.int64)


# ----------------------------------------------------------------------------- registry
_MNIST_PAIRS = {"mnist01": (0, 1), "mnist36": (3, 6)}
_DIGITS = {"digits01": (0, 1), "digits36": (3, 6), "digits": tuple(range(10))}

DATASETS = (
    "simple-seq", "simple-bits", "simple-quotes", "elman-xor", "elman-letter", "dna",
    "mnist01", "mnist01-ds", "mnist36", "mnist36-ds", "mnist8", "mnist8-ds", "mnist-even-odd",
    "mnist01-gen", "mnist-umap-dD-rR", "mnist-tsne-dD-rR", "mnist-pca-rR-pP", "mnist01-idx", "mnist36-idx",
    "digits01", "digits36", "digits",
)

# The parametrised families and the instance ``qrnn datasets`` describes for each (the paper's
# UMAP model: 3 dimensions, 5 bits; the reference's PCA script: 3 bits of 8 components).
FAMILY_EXAMPLES = {
    "mnist-umap-dD-rR": ("mnist-umap-d3-r5", "D in 2..4 UMAP dimensions, R bits each"),
    "mnist-tsne-dD-rR": ("mnist-tsne-d2-r5", "D in 2..3 t-SNE dimensions, R bits each (the paper's encoding)"),
    "mnist-pca-rR-pP": ("mnist-pca-r3-p8", "P in 1..8 principal components, R bits each"),
}


def get_dataset(name: str, *, sentence_length: int | None = None, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Look up a dataset by its reference name (``qrnn datasets`` lists them), or read a user's
    ``.npz``/``.csv`` file of token sequences (:mod:`qrnn_qiskit.training.userdata`).

    ``sentence_length`` applies to the generated tasks (simple-seq, elman-*, dna).

    Raises:
        ValueError: for an unknown name.
        DatasetError: when its files are missing or malformed.
    """
    from qrnn_qiskit.training.userdata import is_user_dataset, load_user_dataset

    if is_user_dataset(name):
        return load_user_dataset(name)
    generated = {"simple-seq": (SimpleSequence, 20), "simple-bits": (SimpleBits, 8), "elman-xor": (ElmanXOR, 36), "elman-letter": (ElmanLetter, 36), "dna": (DNA, 20)}
    if name in generated:
        cls, default = generated[name]
        return cls(sentence_length or default)
    if name == "simple-quotes":
        return SimpleQuotes()
    base, deskewed = (name[:-3], True) if name.endswith("-ds") else (name, False)
    if base in _MNIST_PAIRS:
        return MNISTCsv(name, _MNIST_PAIRS[base], deskewed=deskewed, data_dir=data_dir)
    if base == "mnist8":
        digits = tuple(range(8)) if deskewed else tuple(range(9))  # the reference's non-ds set has 9
        return MNISTCsv(name, digits, scanlines=3, deskewed=deskewed, data_dir=data_dir)
    if name == "mnist-even-odd":
        return MNISTCsv(name, range(10), labels=[d % 2 for d in range(10)], num_classes=2, data_dir=data_dir)
    if name == "mnist01-gen":
        return MNISTCsv(name, (0, 1), generative=True, data_dir=data_dir)
    match = re.fullmatch(r"mnist-(umap|tsne)-d(\d+)-r(\d+)", name)
    if match:
        return MNISTFeatures(name, match[1], dims=int(match[2]), bits=int(match[3]), data_dir=data_dir)
    match = re.fullmatch(r"mnist-pca-r(\d+)-p(\d+)", name)
    if match:
        dims = int(match[2])
        if not 1 <= dims <= 8:
            raise ValueError(f"{name}: the number of components P must be in 1..8, got {dims}.")
        return MNISTFeatures(name, "pca", bits=int(match[1]), dims=dims, data_dir=data_dir)
    if name.endswith("-idx") and name[:-4] in _MNIST_PAIRS:
        return MNISTIdx(name, _MNIST_PAIRS[name[:-4]], data_dir=data_dir)
    if name in _DIGITS:
        return SklearnDigits(name, _DIGITS[name])
    raise ValueError(f"Unknown dataset {name!r}; available: {', '.join(DATASETS)}.")


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One entry per dataset family: ``name`` (an instance of a parametrised family), ``family``
    and its ``note``, and either its ``describe()`` figures or ``missing``: what it needs that
    is not here (``data_dir`` with its files, or an optional package)."""
    from qrnn_qiskit.core.optionals import MissingOptionalDependency

    entries = []
    for family in DATASETS:
        name, note = FAMILY_EXAMPLES.get(family, (family, ""))
        entry = {"name": name, "family": family, "note": note}
        try:
            entry.update(get_dataset(name, data_dir=data_dir).describe())
        except MissingOptionalDependency as exc:
            entry["missing"] = str(exc)
        except DatasetError:
            files = "the reference csv.gz files" if "idx" not in name else "the MNIST IDX files"
            entry["missing"] = f"needs --data-dir with {files}, or qrnn datasets fetch {name}"
        entries.append(entry)
    return entries
