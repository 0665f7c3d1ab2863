"""Training on the exact engine: settings, optimisers, the loop and its callbacks."""

from __future__ import annotations

from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.training.settings import TrainSettings

__all__ = ["TrainSettings", "evaluate_exact"]
