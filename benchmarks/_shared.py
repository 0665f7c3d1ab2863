"""What the benchmarks that read ``../shared`` have in common: its paths, the ``--checkpoint`` and
``--data-dir`` options defaulting to the reference mnist01 model and data, a clean skip without
them, and reading either a qrnn-qiskit checkpoint or the reference's state dict.

Scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE_MNIST01 = SHARED / "reference/checkpoints/mnist01-reference.npz"
MNIST_DATA = SHARED / "data/rvqe-mnist"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` (default: the reference mnist01 model) and ``--data-dir``."""
    parser.add_argument("--checkpoint", default=str(REFERENCE_MNIST01),
                        help="a qrnn-qiskit checkpoint or the reference's .npz state dict")
    parser.add_argument("--data-dir", default=str(MNIST_DATA))


def load_model_or_skip(path: str, benchmark: str):
    """The checkpoint at ``path``; without it, one JSON line saying the benchmark is skipped and
    exit 0. A qrnn-qiskit checkpoint (its ``meta`` and ``parameters`` arrays) is loaded as such,
    anything else is read as the reference's state dict (``qrnn import-reference``'s reader)."""
    from qrnn_qiskit.models.checkpoint import load_checkpoint
    from qrnn_qiskit.models.reference import read_reference

    if not Path(path).exists():
        print(json.dumps({"benchmark": benchmark, "skipped": f"no checkpoint at {path}"}))
        sys.exit(0)
    if Path(path).suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if {"meta", "parameters"} <= set(data.files):
                return load_checkpoint(path)
    return read_reference(path)
