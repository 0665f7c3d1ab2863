"""qrnn_qiskit: a Qiskit-native compiler, trainer and hardware runner for the QRNN of Bausch,
"Recurrent Quantum Neural Networks" (NeurIPS 2020).

The workflows, one per ``qrnn`` command and with the same parameter names: :func:`build`,
:func:`train`, :func:`resume`, :func:`evaluate` and :func:`import_reference`, with
:class:`TrainSettings`. They load lazily, so ``import qrnn_qiskit`` stays light.
"""

from __future__ import annotations

import importlib

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError, DatasetError, QRNNError

__version__ = "0.1.0"

_LAZY = {
    "build": "workflows.build",
    "evaluate": "workflows.evaluate",
    "train": "workflows.train",
    "resume": "workflows.train",
    "sweep": "workflows.sweep",
    "TrainSettings": "training.settings",
    "import_reference": "models.reference",
}

__all__ = ["QRNNConfig", "QRNNError", "CheckpointError", "DatasetError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
