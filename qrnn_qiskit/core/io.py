"""Small file helpers: atomic writes, and reading an ``.npz`` archive without pickle."""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.errors import CheckpointError

__all__ = ["atomic_write_text", "atomic_write_bytes", "read_npz"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees a half-written file and an interrupted write leaves the old file intact."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: the folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would have
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_npz(path: Path, what: str, error: type[Exception] = CheckpointError) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle.

    Raises:
        CheckpointError (or ``error``): if the file is missing, truncated or not an ``.npz`` archive of arrays.
    """
    if not path.is_file():
        raise error(f"No {what} at {path}.")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # an .npz is a zip archive (an empty one: end record only)
        kind = "qrnn checkpoint" if what == "checkpoint" else what
        raise error(
            f"{path} is not a {kind}: a {what} is an .npz archive, and this file is not one (it starts with {magic!r})."
        )
    _check_headers(path, what, error)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ValueError:  # object arrays: never loaded, and numpy's advice to allow pickles is not passed on
        raise error(f"{path} is not a {what} of plain arrays: it holds pickled objects, which are never loaded.") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise error(f"{path} is not a readable {what} (truncated or damaged .npz archive: {exc}).") from exc


#: deflate cannot expand data more than about 1032-fold; a member claiming more is forged
_MAX_EXPANSION = 1100
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _check_headers(path: Path, what: str, error: type[Exception]) -> None:
    """Read every array's header (shape, dtype) before any data, and refuse an array whose claimed
    size its archive member cannot hold: a forged header would otherwise allocate that size."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                limit = info.file_size
                if info.compress_type != zipfile.ZIP_STORED:
                    limit = min(limit, info.compress_size * _MAX_EXPANSION + 2**20)
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = _HEADER_READERS.get(version)
                    if read_header is None:
                        continue  # a newer header version: np.load checks it
                    shape, _, dtype = read_header(member)
                if dtype.hasobject:
                    continue  # refused by np.load below without reading it
                claimed = math.prod(shape) * dtype.itemsize
                if claimed > limit:
                    raise error(
                        f"{path} is not a readable {what}: its array {info.filename[:-4]!r} claims shape {shape} "
                        f"({claimed:,} bytes of {dtype}), but its archive member holds {info.file_size:,} bytes. "
                        "The file is damaged or forged; nothing was allocated."
                    )
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise error(f"{path} is not a readable {what} (truncated or damaged .npz archive: {exc}).") from exc
