"""``qrnn datasets fetch``: download the data files a dataset needs into a cache, checked.

The MNIST sets read the reference implementation's preprocessed ``csv.gz`` files
(CLEconomides/RVQE, ``RVQE/datasets/res/``; the t-SNE files from the last revision that holds
them) or the standard MNIST IDX files. Every file's checksum is recorded in the package
(:mod:`qrnn_qiskit.data.checksums`): SHA-256 for the reference files, the md5 sums
torchvision publishes for the IDX files. A download goes to a temporary file in the target folder
and is renamed into place only when its checksum matches, so a failure (404, timeout, no
network, a wrong file) leaves nothing half-written.

The cache is ``$QRNN_DATA_DIR``, else ``$XDG_CACHE_HOME/qrnn-qiskit/data``, else
``~/.cache/qrnn-qiskit/data``; every command finds it when no data folder is given.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.cache import DATA_DIR_ENV, default_data_dir
from qrnn_qiskit.data.checksums import IDX_MD5, REFERENCE_SHA256
from qrnn_qiskit.data.registry import FAMILY_EXAMPLES, get_dataset
from qrnn_qiskit.data.stamps import digest, stamp

__all__ = ["fetch", "default_data_dir", "files_for", "source_url", "DATA_DIR_ENV"]

REFERENCE_COMMIT = "400a5ebcaa5c3c3b8f6cb423cec52b8e7c94e393"
TSNE_COMMIT = "077c7aa7d2c9d8cdbed84f8a5f5e6cd319b2e5d2"  # the last revision that holds the t-SNE files
_REFERENCE_URL = "https://raw.githubusercontent.com/CLEconomides/RVQE/{commit}/RVQE/datasets/res/{name}"
IDX_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_CHUNK = 1 << 16
logger = logging.getLogger("qrnn_qiskit")


def source_url(name: str, mirror: str | None = None) -> str:
    """Where ``name`` is downloaded from: ``mirror`` + name when given (every file flat in one
    folder), else the reference repository at its commit, or the MNIST mirror for IDX files.

    Raises:
        ValueError: for a file this package has no checksum for.
    """
    _expected(name)
    if mirror:
        return mirror.rstrip("/") + "/" + name
    if name in IDX_MD5:
        return IDX_MIRROR + name
    commit = TSNE_COMMIT if name.startswith("mnist-tsne-") else REFERENCE_COMMIT
    return _REFERENCE_URL.format(commit=commit, name=name)


def _expected(name: str) -> tuple[str, str]:
    if name in REFERENCE_SHA256:
        return "sha256", REFERENCE_SHA256[name]
    if name in IDX_MD5:
        return "md5", IDX_MD5[name]
    raise ValueError(f"No checksum is recorded for {name!r}; it is not a file of any dataset here.")


def files_for(name: str) -> list[str]:
    """The data files dataset ``name`` reads (none for generated and bundled sets).

    Raises:
        ValueError: for an unknown dataset name.
    """
    with tempfile.TemporaryDirectory() as folder:  # a folder to describe the files against, never read
        dataset = get_dataset(name, data_dir=folder)
        return list(getattr(dataset, "files", lambda: [])())


def _download(url: str, target: Path, algorithm: str, expected: str, timeout: float, total: float) -> None:
    """Stream ``url`` into a temporary file beside ``target``; rename it into place when its
    checksum is ``expected``. Any failure removes the temporary file and raises DatasetError;
    ``timeout`` bounds each read, ``total`` the whole file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.new(algorithm)
    started = time.monotonic()
    try:
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            for block in iter(lambda: response.read1(_CHUNK), b""):  # what has arrived: the total is checked often
                digest.update(block)
                handle.write(block)
                if time.monotonic() - started > total:
                    raise DatasetError(f"Downloading {url} took more than {total:g} s in all (total_timeout); "
                                       "nothing was written. Try again, raise total_timeout, or another mirror.")
        if digest.hexdigest() != expected:
            raise DatasetError(
                f"{url} sent a file whose {algorithm.upper()} is {digest.hexdigest()}, but {target.name} has "
                f"{expected}: not the recorded file, so nothing was written. Try again, or another mirror."
            )
        os.replace(tmp, target)
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"{url} answered {exc.code} {exc.reason}: {target.name} is not there; nothing was written.") from None
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"Could not download {url} ({reason}): no network, a timeout after {timeout:g} s, or the server is down; "
            f"nothing was written. Without network, copy the files into {target.parent} by hand."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def fetch(name: str, dir: str | os.PathLike | None = None, *, mirror: str | None = None, timeout: float = 60.0,
          total_timeout: float = 900.0) -> list[Path]:
    """Download what dataset ``name`` (or ``"all"``) needs into ``dir`` (default: the cache).

    Files already there with the right checksum are kept; others are downloaded and checked, and
    each is stamped (:mod:`qrnn_qiskit.data.stamps`) so every later read re-checks it. ``timeout``
    bounds each read from the server, ``total_timeout`` each file's whole download. ``.part``
    files a killed fetch left behind (untouched for longer than ``timeout``) are removed.
    Returns the paths of every file the dataset needs.

    Raises:
        ValueError: for an unknown dataset name or a non-positive timeout.
        DatasetError: for a download that fails or brings a file with the wrong checksum.
    """
    for label, value in (("timeout", timeout), ("total_timeout", total_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{label} must be positive seconds, got {value!r}.")
    if name == "all":
        names = sorted(set(REFERENCE_SHA256) | set(IDX_MD5))
    else:
        names = files_for(FAMILY_EXAMPLES.get(name, (name,))[0])  # a family pattern: its example instance
    folder = Path(dir).expanduser() if dir is not None else default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(folder, timeout)
    paths = []
    for file in names:
        algorithm, expected = _expected(file)
        target = folder / file
        if target.is_file() and digest(target, algorithm) == expected:
            logger.debug("%s is already there", target)
        else:
            logger.info("downloading %s", source_url(file, mirror))
            _download(source_url(file, mirror), target, algorithm, expected, timeout, total_timeout)
        stamp(target, algorithm, expected)
        paths.append(target)
    return paths


def _remove_stale_parts(folder: Path, timeout: float) -> None:
    """``.part`` files of downloads that were killed: a live one is written at least every ``timeout``."""
    for part in folder.glob(".*.part"):
        try:
            if time.time() - part.stat().st_mtime > timeout:
                part.unlink()
                logger.info("removed %s, left by a download that was stopped", part)
        except OSError:
            continue
