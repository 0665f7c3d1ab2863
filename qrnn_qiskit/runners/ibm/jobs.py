"""Job records: what is needed to collect IBM Quantum results later, written to ``jobs.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.io import atomic_write_text

__all__ = ["JOBS_FILE", "JobRecord", "load_job_record", "save_job_record"]

JOBS_FILE = "jobs.json"


@dataclass
class JobRecord:
    """What is needed to collect results later: written to ``jobs.json`` before waiting."""

    backend: str
    job_ids: list[str]
    rows: list[int]
    length: int
    shots: int
    neuron_mode: str
    context: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": "qrnn-ibm-jobs",
            "version": 1,
            "backend": self.backend,
            "job_ids": self.job_ids,
            "rows": self.rows,
            "length": self.length,
            "shots": self.shots,
            "neuron_mode": self.neuron_mode,
            "context": self.context,
        }


def load_job_record(path: str | os.PathLike) -> JobRecord:
    """Read a ``jobs.json`` written by :func:`save_job_record`."""
    path = Path(path)
    if path.is_dir():
        path = path / JOBS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise QRNNError(f"No job record at {path}; expected the jobs.json that an evaluation wrote into its out folder.") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise QRNNError(f"{path} is not a readable job record ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != "qrnn-ibm-jobs":
        raise QRNNError(f"{path} is not a qrnn job record (no 'format': 'qrnn-ibm-jobs').")
    if data.get("version") != 1:
        raise QRNNError(f"{path} has job-record version {data.get('version')!r}; this qrnn-qiskit reads version 1.")
    try:
        return JobRecord(
            str(data["backend"]), [str(i) for i in data["job_ids"]], list(data["rows"]), int(data["length"]),
            int(data["shots"]), str(data["neuron_mode"]), dict(data.get("context", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise QRNNError(f"{path} is an incomplete job record ({type(exc).__name__}: {exc}); nothing was fetched.") from None


def save_job_record(record: JobRecord, folder: str | os.PathLike) -> Path:
    """Write ``record`` to ``folder/jobs.json`` (atomically), before its jobs are waited for."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / JOBS_FILE
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2) + "\n")
    return path
