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
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.cache import DATA_DIR_ENV, default_data_dir
from qrnn_qiskit.data.checksums import IDX_MD5, REFERENCE_SHA256
from qrnn_qiskit.data.registry import FAMILY_EXAMPLES, get_dataset

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


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, algorithm: str, expected: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``target``; rename it into place when its
    checksum is ``expected``. Any failure removes the temporary file and raises DatasetError."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.new(algorithm)
    try:
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                handle.write(block)
        if digest.hexdigest() != expected:
            raise DatasetError(
                f"{url} sent a file whose {algorithm.upper()} is {digest.hexdigest()}, but {target.name} has "
                f"{expected}: not the recorded file, so nothing was written. Try again, or another mirror."
            )
        os.replace(tmp, target)
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"{url} answered {exc.code} {exc.reason}: {target.name} is not there; nothing was written.") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"Could not download {url} ({reason}): no network, a timeout after {timeout:g} s, or the server is down; "
            f"nothing was written. Without network, copy the files into {target.parent} by hand."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def fetch(name: str, dir: str | os.PathLike | None = None, *, mirror: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Download what dataset ``name`` (or ``"all"``) needs into ``dir`` (default: the cache).

    Files already there with the right checksum are kept; others are downloaded and checked.
    Returns the paths of every file the dataset needs.

    Raises:
        ValueError: for an unknown dataset name or a non-positive timeout.
        DatasetError: for a download that fails or brings a file with the wrong checksum.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}.")
    if name == "all":
        names = sorted(set(REFERENCE_SHA256) | set(IDX_MD5))
    else:
        names = files_for(FAMILY_EXAMPLES.get(name, (name,))[0])  # a family pattern: its example instance
    folder = Path(dir).expanduser() if dir is not None else default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for file in names:
        algorithm, expected = _expected(file)
        target = folder / file
        if target.is_file() and _digest(target, algorithm) == expected:
            logger.debug("%s is already there", target)
        else:
            logger.info("downloading %s", source_url(file, mirror))
            _download(source_url(file, mirror), target, algorithm, expected, timeout)
        paths.append(target)
    return paths
