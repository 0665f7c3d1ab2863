"""Datasets, checkpoints, reference import, evaluation and training on the exact engine."""

from __future__ import annotations

from qrnn_qiskit.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qrnn_qiskit.training.datasets import DATASETS, Dataset, SequenceBatch, get_dataset
from qrnn_qiskit.training.evaluate import evaluate_exact
from qrnn_qiskit.training.reference_import import (
    import_reference,
    import_reference_npz,
    import_reference_torch,
    read_reference,
)
from qrnn_qiskit.training.settings import TrainSettings

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "Dataset",
    "SequenceBatch",
    "DATASETS",
    "get_dataset",
    "evaluate_exact",
    "import_reference",
    "read_reference",
    "import_reference_npz",
    "import_reference_torch",
    "TrainSettings",
]
