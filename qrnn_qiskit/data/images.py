"""MNIST and the 8x8 digits as token sequences: the reference's preprocessed csv.gz files (pixels,
PCA, UMAP and t-SNE features), the standard IDX files, and scikit-learn's bundled digits."""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.base import SPLITS, Labelled, SequenceBatch, bits_to_tokens, label_word_tokens, split_indices
from qrnn_qiskit.data.cache import default_data_dir
from qrnn_qiskit.data.stamps import check_stamp

__all__ = ["MNISTCsv", "MNISTFeatures", "MNISTIdx", "SklearnDigits", "bundled_digits", "require_dir"]


def require_dir(name: str, data_dir: str | os.PathLike | None, what: str) -> Path:
    """``data_dir``, or the data cache of ``qrnn datasets fetch`` when it exists."""
    if data_dir is None:
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


class MNISTCsv(Labelled):
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
        self.data_dir = require_dir(name, data_dir, "the reference's mnist-simple csv.gz files")
        labels = tuple(range(len(self.digits))) if labels is None else tuple(labels)
        super().__init__(name, scanlines, labels, num_classes or len(set(labels)))

    def _feature_length(self) -> int:
        return 100

    def files(self) -> list[str]:
        """The data files this set reads."""
        suffix = "-deskewed" if self.deskewed else ""
        return [f"mnist-simple-{d}{suffix}-{split}.csv.gz" for d in self.digits for split in SPLITS]

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


class MNISTFeatures(Labelled):
    """All ten digits (or the ``digits`` given, labelled 0, 1, ... in that order) from quantised features: ``pca`` (one principal component per step, its
    top ``R`` bits; ``I = R``), ``umap`` or ``tsne`` (bit-plane ``k`` of all ``D`` coordinates at step
    ``k``, for the top ``R`` bits; ``I = D``). Files ``mnist-pca-8bit-{d}-{split}``,
    ``mnist-umap-{D}-{d}-{split}``, ``mnist-tsne-{D}-{d}-{split}``.

    PCA sequences are laid out as :class:`Labelled` says. UMAP and t-SNE follow the reference's
    own layout (``mnistumap.py`` at 400a5eb, ``mnisttsne.py`` before 957a962): with ``LL`` label
    words, ``inputs = planes + [0] * (LL - 1)`` and ``targets = [0] * (R - 1) + label words``, so
    with the offset-by-one pairing the first label word is predicted right after bit-plane
    ``R - 1`` is read (with one label word the last bit-plane is never read), and label words are
    never fed back.
    """

    def __init__(self, name: str, kind: str, *, bits: int, dims: int, data_dir: str | os.PathLike | None,
                 digits: Sequence[int] = tuple(range(10))) -> None:
        self.kind, self.bits, self.dims, self.digits = kind, bits, dims, tuple(digits)
        self.data_dir = require_dir(name, data_dir, f"the reference's mnist-{kind} csv.gz files")
        if not 1 <= bits <= 8:
            raise ValueError(f"{name}: the number of bits R must be in 1..8, got {bits}.")
        width = bits if kind == "pca" else dims
        super().__init__(name, width, range(len(self.digits)), len(self.digits))
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
        return [f"{self._stem()}-{digit}-{split}.csv.gz" for digit in self.digits for split in SPLITS]

    def _features(self, split: str) -> list[np.ndarray]:
        out = []
        for digit in self.digits:
            path = self.data_dir / f"{self._stem()}-{digit}-{split}.csv.gz"
            if self.kind == "pca":
                out.append(_read_int_csv(path, 8, 255)[:, : self.dims] >> (8 - self.bits))
            else:
                values = _read_int_csv(path, self.dims, 255)
                planes = np.stack([(values >> (7 - k)) & 1 for k in range(self.bits)], axis=1)  # (n, R, D)
                out.append(bits_to_tokens(planes))
        return out

    def _assemble(self, features: list[np.ndarray], groups: list[np.ndarray]) -> SequenceBatch:
        if self.kind == "pca":
            return super()._assemble(features, groups)
        planes = np.concatenate(features)
        labels = np.array([self.group_labels[g] for g in np.concatenate(groups)], dtype=np.int64)
        words = np.array([label_word_tokens(int(v), self.label_bits, self.input_width) for v in labels]).reshape(len(labels), -1)
        inputs = np.concatenate([planes, np.zeros((len(labels), self.label_words - 1), dtype=np.int64)], axis=1)
        targets = np.concatenate([np.zeros((len(labels), self.bits - 1), dtype=np.int64), words], axis=1)
        return SequenceBatch(inputs, targets, labels)


def _read_int_csv(path: Path, width: int, maximum: int) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(
            f"Missing data file {path}; expected the reference's csv.gz files there "
            "(`qrnn datasets fetch NAME --dir FOLDER` downloads them)."
        )
    check_stamp(path)
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


def _scan_images(binary: np.ndarray) -> np.ndarray:
    """Tokens of binary images ``(n, h, w)`` (1 = ink): row-major and column-major scanlines,
    bit value 1 being background, scanline 0 the most significant bit."""
    background = 1 - binary
    row_major = background.reshape(len(binary), -1)
    col_major = background.transpose(0, 2, 1).reshape(len(binary), -1)
    return (row_major << 1) | col_major


class _ImageSet(Labelled):
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


def _bundled_digits_file() -> Path | None:
    """Where scikit-learn keeps the digits' CSV, found without importing it (None where the
    installed package has no folder to look in)."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(folders[0]) / "datasets" / "data" / "digits.csv.gz" if folders else None


@functools.lru_cache(maxsize=1)
def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: the images ``(1797, 8, 8)`` (values 0-16) and their digits, as
    ``sklearn.datasets.load_digits`` gives them (read-only).

    The gzipped CSV that scikit-learn bundles is read here directly, as its ``load_digits`` reads
    it: importing ``sklearn.datasets`` imports scipy.stats and took 0.74 s (``python -X importtime``
    of the Quickstart's ``qrnn train --recipe digits01``), a quarter of a run with compiled kernels,
    to parse one 1797 x 65 table. Where the file is not where scikit-learn keeps it (1.3 to 1.9
    do) or not that table, ``load_digits`` reads it; a test compares the two."""
    optionals.require("sklearn", "the digits datasets")
    path, table = _bundled_digits_file(), None
    if path is not None:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                table = np.loadtxt(handle, delimiter=",")
        except (OSError, ValueError, EOFError):
            pass  # load_digits below reads it, or says what is wrong
    if table is not None and table.ndim == 2 and table.shape[1] == 65:
        images, targets = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits

        data = load_digits()
        images, targets = np.array(data.images), np.array(data.target)
    images.flags.writeable = False
    targets.flags.writeable = False
    return images, targets


class SklearnDigits(_ImageSet):
    """scikit-learn's bundled 8x8 handwritten digits, binarised (value > 8 is ink) and scanned
    row-major and column-major like the reference's MNIST: 64 steps of 2-bit tokens. Each digit's
    images are split 60/20/20 into train/validate/test with a fixed seed. Needs the ``digits``
    extra (scikit-learn)."""

    def __init__(self, name: str, digits: Sequence[int]) -> None:
        labels = range(len(digits))
        super().__init__(name, digits, labels, len(digits), 8)

    def _features(self, split: str) -> list[np.ndarray]:
        pixels, targets = bundled_digits()
        images = (pixels > 8).astype(np.int64)
        out = []
        for digit in self.digits:
            mine = images[targets == digit]
            out.append(_scan_images(mine[split_indices(len(mine), 1000 + digit)[split]]))
        return out


class MNISTIdx(_ImageSet):
    """MNIST from the standard IDX files (``train-images-idx3-ubyte[.gz]``, ...), preprocessed as
    the reference did: crop the central 20x20, resize to 10x10 (2x2 means), binarise at 0.5, scan
    row-major and column-major. Validation is the last 500 training images of each digit."""

    def __init__(self, name: str, digits: Sequence[int], *, data_dir: str | os.PathLike | None) -> None:
        self.data_dir = require_dir(name, data_dir, "the MNIST IDX files")
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
    check_stamp(path)
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
