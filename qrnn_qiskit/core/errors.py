"""Exceptions raised by qrnn_qiskit.

Bad arguments raise the builtin :class:`ValueError` or :class:`TypeError`. Failures that happen
while running something (a file that cannot be read, a backend that refuses a job, a
postselection that can never succeed) raise :class:`QRNNError` or one of its subclasses.
"""

from __future__ import annotations

__all__ = ["QRNNError", "CheckpointError", "DatasetError"]


class QRNNError(Exception):
    """Base class for run-time failures in qrnn_qiskit."""


class CheckpointError(QRNNError):
    """A checkpoint file is missing, truncated, foreign or of an unsupported version."""


class DatasetError(QRNNError):
    """A dataset file or directory is missing or malformed."""
