"""The paper's datasets and a user's own: base types (:mod:`~qrnn_qiskit.data.base`), generated
tasks (:mod:`~qrnn_qiskit.data.synthetic`), image sets (:mod:`~qrnn_qiskit.data.images`), user
files (:mod:`~qrnn_qiskit.data.userdata`), the registry by name (:mod:`~qrnn_qiskit.data.registry`)
and the checked download of their files (:mod:`~qrnn_qiskit.data.fetch`)."""

from __future__ import annotations

from qrnn_qiskit.data.base import Dataset, SequenceBatch, every_step_scored
from qrnn_qiskit.data.fetch import fetch
from qrnn_qiskit.data.registry import DATASETS, get_dataset, list_datasets

__all__ = ["DATASETS", "Dataset", "SequenceBatch", "every_step_scored", "fetch", "get_dataset", "list_datasets"]
