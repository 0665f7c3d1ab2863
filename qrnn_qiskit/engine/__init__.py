"""Exact postselected simulation of QRNN circuits, with reverse-mode gradients."""

from __future__ import annotations

from qrnn_qiskit.engine.exact import ExactEngine, SequenceResult, reference_loss_offset

__all__ = ["ExactEngine", "SequenceResult", "reference_loss_offset"]
