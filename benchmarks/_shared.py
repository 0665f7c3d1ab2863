"""What the benchmarks that read ``../shared`` have in common: its paths, the ``--checkpoint`` and
``--data-dir`` options defaulting to the reference mnist01 model and data, a clean skip without
them, and reading either a qrnn-qiskit checkpoint or the reference's state dict.

Scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
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


_CLI_CHILD = """
import sys
sys.path.insert(0, {root!r})
import qrnn_qiskit
assert qrnn_qiskit.__file__.startswith({root!r}), qrnn_qiskit.__file__
from qrnn_qiskit.cli import main
main()
"""


def qrnn_command(root: str, args: list[str]) -> list[str]:
    """The command line of ``qrnn ARGS`` run from checkout ``root``'s package (checked)."""
    return [sys.executable, "-c", _CLI_CHILD.format(root=root), *args]


def qrnn_in_checkout(root: str, args: list[str], env: dict | None = None) -> float:
    """Wall seconds of the command ``qrnn ARGS`` in a new process that runs checkout ``root``'s
    package (checked), with ``env`` added to the environment; exits naming the checkout if it fails."""
    command = qrnn_command(root, args)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=root)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{root}: qrnn {args[0]} failed:\n{done.stderr[-2000:]}")
    return seconds


def checkout_rounds(description: str, rounds: int) -> tuple[list[str], list[list[str]]]:
    """Parse ``CHECKOUT... [--rounds N]``: the checkouts' resolved roots, and per round the order to
    run them in (reversed every other round, so that the machine's drift falls on all alike)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkouts", nargs="+", help="repository roots; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    roots = [str(Path(c).resolve()) for c in args.checkouts]
    return roots, [roots if k % 2 == 0 else roots[::-1] for k in range(args.rounds)]
