"""Where downloaded data files live: the data cache of ``qrnn datasets fetch``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir"]

DATA_DIR_ENV = "QRNN_DATA_DIR"


def default_data_dir() -> Path:
    """The data cache: ``$QRNN_DATA_DIR``, else ``$XDG_CACHE_HOME/qrnn-qiskit/data``, else
    ``~/.cache/qrnn-qiskit/data``."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "qrnn-qiskit" / "data"
