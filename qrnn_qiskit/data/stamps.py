"""Stamps of checked data files: ``qrnn datasets fetch`` records each file it checked (size,
modification time, checksum) in the folder's ``.qrnn-stamps.json``, and every later read of a
stamped file compares its size and time with the stamp, hashing it again when either changed.
A cached file edited, truncated or recompressed since its download is refused by name instead of
being read; files in folders that ``fetch`` did not write (a ``--data-dir`` of your own) are read
as they are."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.core.io import atomic_write_text

__all__ = ["STAMPS", "digest", "stamp", "check_stamp"]

STAMPS = ".qrnn-stamps.json"
_CHUNK = 1 << 16
_verified: dict[tuple, bool] = {}  # (path, size, mtime) already hashed in this process


def digest(path: Path, algorithm: str) -> str:
    """The hex digest of the file at ``path``."""
    hasher = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _read(folder: Path) -> dict:
    try:
        stamps = json.loads((folder / STAMPS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def stamp(path: Path, algorithm: str, expected: str) -> None:
    """Record that ``path`` was checked against ``expected`` (its ``algorithm`` digest)."""
    stamps = _read(path.parent)
    info = path.stat()
    stamps[path.name] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "algorithm": algorithm, "digest": expected}
    atomic_write_text(path.parent / STAMPS, json.dumps(stamps, indent=1, sort_keys=True))


def check_stamp(path: Path) -> None:
    """Refuse a stamped file that no longer matches its stamp's checksum.

    Raises:
        DatasetError: naming the file, what changed, and how to get it again.
    """
    entry = _read(path.parent).get(path.name)
    if not isinstance(entry, dict) or not path.is_file():
        return
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns)
    if (info.st_size, info.st_mtime_ns) == (entry.get("size"), entry.get("mtime_ns")) or key in _verified:
        return
    algorithm, expected = entry.get("algorithm"), entry.get("digest")
    if algorithm not in ("sha256", "md5") or digest(path, algorithm) != expected:
        raise DatasetError(
            f"{path} changed since `qrnn datasets fetch` checked it ({info.st_size:,} bytes now, "
            f"{entry.get('size')} then; its {algorithm} no longer matches). Delete it and fetch it again "
            "(`qrnn datasets fetch NAME`), or read your own files from another --data-dir."
        )
    _verified[key] = True
