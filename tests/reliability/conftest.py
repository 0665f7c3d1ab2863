"""What the reliability tests share: one tiny real training run, made through the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from qrnn_qiskit.cli import main


def train_tiny(folder: Path) -> Path:
    """A 2-step run of a 1-2-1 QRNN on simple-seq in ``folder`` (validated at both steps)."""
    result = CliRunner().invoke(main, ["train", "--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1",
                                       "--degree", "1", "--steps", "2", "--validate-every", "1", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder
