"""qrnn_qiskit: a Qiskit-native compiler, trainer and hardware runner for the QRNN of Bausch,
"Recurrent Quantum Neural Networks" (NeurIPS 2020)."""

from __future__ import annotations

from .config import QRNNConfig
from .exceptions import CheckpointError, DatasetError, QRNNError

__version__ = "0.1.0"

__all__ = ["QRNNConfig", "QRNNError", "CheckpointError", "DatasetError", "__version__"]
