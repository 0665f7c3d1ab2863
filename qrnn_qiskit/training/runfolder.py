"""Run folders that cannot be clobbered: one writer at a time, no silent overwrite, and the
newest resumable checkpoint found by name.

A run folder holds ``config.json``, ``metrics.jsonl``, ``best.npz``, ``last.npz`` (written every
few steps or seconds), ``final.npz`` (at the end) and, from a sweep, ``summary.json``. While a
process trains into it, the folder's ``.lock`` file is locked (an OS advisory lock, released by
the kernel when the process dies, even by ``kill -9``) and names the process; a second writer is
refused with that PID.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from qrnn_qiskit.core.errors import CheckpointError, QRNNError
from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.models.checkpoint import Checkpoint, load_checkpoint

try:  # POSIX advisory locks; Windows locks a byte range of the file instead
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

__all__ = ["RUN_FILES", "CHECKPOINTS", "RunFolderError", "run_folder", "newest_checkpoint", "checkpoints_in",
           "trim_metrics"]

logger = logging.getLogger("qrnn_qiskit")

#: what a run writes into its folder (``--overwrite`` removes these and nothing else)
RUN_FILES = ("config.json", "metrics.jsonl", "best.npz", "last.npz", "final.npz", "summary.json", "tensorboard")
#: the checkpoints a run folder can be resumed from, preferred in this order when equally new
CHECKPOINTS = ("final.npz", "last.npz", "best.npz")
LOCK = ".lock"


class RunFolderError(QRNNError):
    """A run folder is in use by another process, or holds a run that would be overwritten."""


@contextlib.contextmanager
def run_folder(out: str | os.PathLike, *, overwrite: bool = False, continuing: bool = False) -> Iterator[Path]:
    """Hold the run folder ``out`` for one writer while the block runs.

    A folder that does not exist is created, and removed again if the block fails before writing
    anything into it. An existing folder with files in it is refused unless ``continuing`` (a
    resume into its own run) or ``overwrite`` (its run files are removed first; other files stay).

    Raises:
        RunFolderError: when another process holds the folder (naming its PID), or it holds files
            and neither flag was given.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file; a run folder is a directory. Choose another --out.")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        handle = _lock(out)
    except BaseException:
        _remove_if_empty(out, created)
        raise
    try:
        if not continuing and not created:
            _claim(out, overwrite)
        yield out
    except BaseException:
        _unlock(out, handle)
        _remove_if_empty(out, created)
        raise
    _unlock(out, handle)


def _claim(out: Path, overwrite: bool) -> None:
    """Refuse a folder with files in it, or (``overwrite``) remove its run files."""
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if not present:
        return
    if not overwrite:
        shown = ", ".join(present[:6]) + (", ..." if len(present) > 6 else "")
        raise RunFolderError(
            f"--out {out} is not empty ({shown}). Continue its run with `qrnn resume {out}`, choose a new --out, "
            "or pass overwrite=True to replace the run in it."
        )
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _remove_if_empty(out: Path, created: bool) -> None:
    """A folder this call created, and nothing was written into: removed (no empty run folders)."""
    if created and out.is_dir() and not any(p.name != LOCK for p in out.iterdir()):
        (out / LOCK).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            out.rmdir()


def _lock(out: Path):
    """Lock ``out/.lock`` for this process and write its PID there; refuse if another holds it."""
    path = out / LOCK
    for _ in range(5):  # the file can be unlinked by its holder between our open and our lock
        handle = path.open("a+")
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            handle.close()
            raise RunFolderError(
                f"Run folder {out} is in use by {holder}. Wait for that run to end (or stop it), or choose "
                "another --out; two runs writing one folder would mix their files."
            )
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} ({' '.join(sys.argv[:3])}, since {time.strftime('%H:%M:%S')})")
            handle.flush()
            return handle
        handle.close()
    raise RunFolderError(f"Could not lock run folder {out}: its lock file kept changing. Try again.")


def _try_lock(handle) -> bool:
    try:
        if fcntl is None:  # pragma: no cover - Windows
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(out: Path, handle) -> None:
    # unlinked while still locked: a process waiting on the old file sees the inode change and retries
    (out / LOCK).unlink(missing_ok=True)
    handle.close()


def newest_checkpoint(run: str | os.PathLike) -> tuple[Path, Checkpoint]:
    """The newest readable checkpoint of the run folder ``run``: the last written of ``final.npz``,
    ``last.npz`` and ``best.npz`` (a damaged one is skipped with a warning).

    Raises:
        CheckpointError: when the folder holds none that can be read.
    """
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"No run folder at {run}.")
    found = []
    for rank, name in enumerate(CHECKPOINTS):
        path = run / name
        if not path.is_file():
            continue
        try:
            checkpoint = load_checkpoint(path)
        except CheckpointError as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        found.append((path.stat().st_mtime_ns, checkpoint.meta.get("step", 0), -rank, path, checkpoint))
    if not found:
        raise CheckpointError(
            f"Run folder {run} holds no readable checkpoint ({', '.join(CHECKPOINTS)}). Start it again with "
            f"`qrnn train --config {run / 'config.json'} --out {run} --overwrite`."
        )
    _, _, _, path, checkpoint = max(found, key=lambda item: item[:3])
    return path, checkpoint


def checkpoints_in(run: Path) -> str:
    """The checkpoints present in ``run``, with their steps, for an error message."""
    parts = []
    for name in CHECKPOINTS:
        try:
            parts.append(f"{name} (step {load_checkpoint(run / name).meta.get('step')})")
        except CheckpointError:
            continue
    return ", ".join(parts)


def trim_metrics(source: Path, target: Path, step: int) -> int:
    """Write into ``target`` the lines of ``source`` (a ``metrics.jsonl``) up to ``step``, so a
    resumed run never repeats a line; unreadable lines (a write cut off by a kill) are dropped.
    Returns the number of lines dropped."""
    if not source.is_file():
        return 0
    kept, dropped = [], 0
    for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            ok = isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step
        except ValueError:
            ok = False
        if ok:
            kept.append(line)
        else:
            dropped += 1
    atomic_write_text(target, "".join(line + "\n" for line in kept))
    return dropped
