"""Every dataset by name: ``get_dataset`` and ``list_datasets`` (what ``qrnn datasets`` shows)."""

from __future__ import annotations

import os
import re

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.core.optionals import MissingOptionalDependency
from qrnn_qiskit.data.base import Dataset
from qrnn_qiskit.data.images import MNISTCsv, MNISTFeatures, MNISTIdx, SklearnDigits
from qrnn_qiskit.data.synthetic import DNA, ElmanLetter, ElmanXOR, SimpleBits, SimpleQuotes, SimpleSequence
from qrnn_qiskit.data.userdata import is_user_dataset, load_user_dataset

__all__ = ["DATASETS", "FAMILY_EXAMPLES", "get_dataset", "list_datasets"]

_MNIST_PAIRS = {"mnist01": (0, 1), "mnist36": (3, 6)}
_DIGITS = {"digits01": (0, 1), "digits36": (3, 6), "digits": tuple(range(10))}

DATASETS = (
    "simple-seq", "simple-bits", "simple-quotes", "elman-xor", "elman-letter", "dna",
    "mnist01", "mnist01-ds", "mnist36", "mnist36-ds", "mnist8", "mnist8-ds", "mnist-even-odd",
    "mnist01-gen", "mnist-umap-dD-rR", "mnist-tsne-dD-rR", "mnist-pca-rR-pP", "mnistAB-umap-dD-rR",
    "mnistAB-pca-rR-pP", "mnist01-idx", "mnist36-idx",
    "digits01", "digits36", "digits",
)

# The parametrised families and the instance ``qrnn datasets`` describes for each (the paper's
# UMAP model: 3 dimensions, 5 bits; the reference's PCA script: 3 bits of 8 components).
FAMILY_EXAMPLES = {
    "mnist-umap-dD-rR": ("mnist-umap-d3-r5", "D in 2..4 UMAP dimensions, R bits each"),
    "mnist-tsne-dD-rR": ("mnist-tsne-d2-r5", "D in 2..3 t-SNE dimensions, R bits each (the paper's encoding)"),
    "mnist-pca-rR-pP": ("mnist-pca-r3-p8", "P in 1..8 principal components, R bits each"),
    "mnistAB-umap-dD-rR": ("mnist01-umap-d2-r4", "digits A and B only (two classes): sequences short enough for a "
                           "device"),
    "mnistAB-pca-rR-pP": ("mnist01-pca-r1-p4", "digits A and B only (two classes): sequences short enough for a "
                          "device"),
}


def get_dataset(name: str, *, sentence_length: int | None = None, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Look up a dataset by its reference name (``qrnn datasets`` lists them), or read a user's
    ``.npz``/``.csv`` file of token sequences (:mod:`qrnn_qiskit.data.userdata`).

    ``sentence_length`` applies to the generated tasks (simple-seq, elman-*, dna).

    Raises:
        ValueError: for an unknown name.
        DatasetError: when its files are missing or malformed.
    """
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
    match = re.fullmatch(r"mnist(\d\d)?-(umap|tsne)-d(\d+)-r(\d+)", name)
    if match:
        return MNISTFeatures(name, match[2], dims=int(match[3]), bits=int(match[4]), data_dir=data_dir,
                             digits=_pair(name, match[1]))
    match = re.fullmatch(r"mnist(\d\d)?-pca-r(\d+)-p(\d+)", name)
    if match:
        dims = int(match[3])
        if not 1 <= dims <= 8:
            raise ValueError(f"{name}: the number of components P must be in 1..8, got {dims}.")
        return MNISTFeatures(name, "pca", bits=int(match[2]), dims=dims, data_dir=data_dir, digits=_pair(name, match[1]))
    if name.endswith("-idx") and name[:-4] in _MNIST_PAIRS:
        return MNISTIdx(name, _MNIST_PAIRS[name[:-4]], data_dir=data_dir)
    if name in _DIGITS:
        return SklearnDigits(name, _DIGITS[name])
    raise ValueError(f"Unknown dataset {name!r}; available: {', '.join(DATASETS)}.")


def _pair(name: str, digits: str | None) -> tuple[int, ...]:
    """The digits of a ``mnistAB-...`` name (all ten without ``AB``)."""
    if digits is None:
        return tuple(range(10))
    if digits[0] == digits[1]:
        raise ValueError(f"{name}: the two digits must differ, got {digits}.")
    return (int(digits[0]), int(digits[1]))


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One entry per dataset family: ``name`` (an instance of a parametrised family), ``family``
    and its ``note``, and either its ``describe()`` figures or ``missing``: what it needs that
    is not here (``data_dir`` with its files, or an optional package)."""
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
