"""The models a run trains and the files that hold them: the QRNN and the classical baselines
(:mod:`~qrnn_qiskit.models.classical`), the engine for either (:mod:`~qrnn_qiskit.models.registry`),
checkpoints (:mod:`~qrnn_qiskit.models.checkpoint`) and the reference implementation's trained
models (:mod:`~qrnn_qiskit.models.reference`)."""

from __future__ import annotations

from qrnn_qiskit.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qrnn_qiskit.models.classical import ClassicalConfig, ClassicalEngine
from qrnn_qiskit.models.reference import import_reference, read_reference
from qrnn_qiskit.models.registry import MODELS, config_from_dict, is_qrnn, make_engine

__all__ = ["MODELS", "Checkpoint", "ClassicalConfig", "ClassicalEngine", "config_from_dict", "import_reference",
           "is_qrnn", "load_checkpoint", "make_engine", "read_reference", "save_checkpoint"]
