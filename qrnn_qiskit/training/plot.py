"""Training curves of a run folder as a PNG (needs the ``plot`` extra, matplotlib)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.errors import QRNNError

__all__ = ["read_metrics", "plot_run"]


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl``.

    Raises:
        QRNNError: when the folder has no metrics or a line is not JSON.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise QRNNError(f"No metrics.jsonl in {run_dir}; pass the out folder of a training run.")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise QRNNError(f"{path} line {number} is not JSON: {exc}") from exc
    if not records:
        raise QRNNError(f"{path} holds no records yet.")
    return records


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Draw loss, validation loss and character error rate against the step; returns the PNG path."""
    optionals.require("matplotlib", "qrnn plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(steps, [r["loss"] for r in records], label="training batch")
    ax_loss.plot(steps, [r["validation_loss"] for r in records], label="validation")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("reference loss")
    ax_loss.legend()
    ax_cer.plot(steps, [r["character_error_rate"] for r in records], color="C2")
    ax_cer.set_xlabel("step")
    ax_cer.set_ylabel("validation character error rate")
    ax_cer.set_ylim(0, 1)
    fig.suptitle(str(Path(run_dir).name))
    fig.tight_layout()
    target = Path(output) if output else Path(run_dir) / "curves.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
