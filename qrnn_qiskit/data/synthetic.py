"""The paper's generated and memorised tasks: simple-seq, simple-bits, simple-quotes, elman-xor,
elman-letter and dna, with the reference implementation's targets and scoring rules."""

from __future__ import annotations

import math

import numpy as np

from qrnn_qiskit.data.base import SPLITS, Dataset, SequenceBatch, check_batch_size, checked_length

__all__ = ["DNA", "ElmanLetter", "ElmanXOR", "SimpleBits", "SimpleQuotes", "SimpleSequence"]


class _Generated(Dataset):
    """A task whose sequences come from a generator; fixed seeds make the held-out splits."""

    split_sizes = {"validate": 256, "test": 1024}
    minimum_length = 2

    def __init__(self, sequence_length: int) -> None:
        self.sequence_length = checked_length(self, sequence_length, self.minimum_length)

    def _generate(self, count: int, rng: np.random.Generator) -> SequenceBatch:
        raise NotImplementedError

    def batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> SequenceBatch:
        return self._generate(check_batch_size(batch_size), rng)

    def split(self, split: str) -> SequenceBatch:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
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
            check_batch_size(batch_size)
            return self.split(split)
        picks = rng.integers(0, len(self._sequences), check_batch_size(batch_size))
        seqs = self._sequences[picks]
        return SequenceBatch(seqs, seqs.copy(), np.full(len(picks), -1))

    def split(self, split: str) -> SequenceBatch:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        return SequenceBatch(self._sequences.copy(), self._sequences.copy(), np.full(len(self._sequences), -1))


class _Cyclic(_Memorise):
    """Sequences that repeat short patterns (``PATTERNS``, one sequence each) to any length."""

    PATTERNS: tuple[tuple[int, ...], ...]
    default_length: int

    def __init__(self, sequence_length: int | None = None) -> None:
        length = self.default_length if sequence_length is None else sequence_length
        self.sequence_length = checked_length(self, length, 2)
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
