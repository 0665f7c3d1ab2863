"""The ground floor: model configuration, neuron modes and their schedules, errors, file helpers
and optional dependencies. Everything else in the package builds on these; they import nothing of it."""

from __future__ import annotations

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError, DatasetError, QRNNError
from qrnn_qiskit.core.modes import NeuronMode

__all__ = ["QRNNConfig", "NeuronMode", "QRNNError", "CheckpointError", "DatasetError"]
