"""qrnn datasets fetch: downloads from a real HTTP server on 127.0.0.1, checked, never half-written."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.checksums import IDX_MD5, REFERENCE_SHA256
from qrnn_qiskit.data.fetch import fetch, files_for, source_url
from qrnn_qiskit.data.registry import get_dataset

MNIST01 = [f"mnist-simple-{d}-{s}.csv.gz" for d in (0, 1) for s in ("train", "validate", "test")]


class _Server:
    """A static file server on 127.0.0.1 that counts requests; ``delay`` stalls every answer."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests.append(self.path)
                time.sleep(delay)
                super().do_GET()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = False  # server_close() waits for every answer: nothing runs on after a test

            def handle_error(self, request, client_address):
                pass  # a client that gave up (the timeout test) leaves a broken pipe: expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(shared_dir, tmp_path):
    """The mnist01 files of ../shared, served over HTTP from a folder of their own."""
    root = tmp_path / "served"
    root.mkdir()
    for name in MNIST01:
        shutil.copy(shared_dir / "data/rvqe-mnist" / name, root)
    server = _Server(root)
    yield server, root
    server.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_downloads_checks_and_is_found_without_a_data_dir(served, tmp_path, monkeypatch):
    server, _ = served
    cache = tmp_path / "cache"
    monkeypatch.setenv("QRNN_DATA_DIR", str(cache))
    result = CliRunner().invoke(main, ["datasets", "fetch", "mnist01", "--mirror", server.url])
    assert result.exit_code == 0, result.output
    assert f"6 file(s) checked in {cache}" in result.output
    assert _leftovers(cache) == sorted(MNIST01)
    for name in MNIST01:
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == REFERENCE_SHA256[name]
    # every command finds the cache without a data folder
    dataset = get_dataset("mnist01")
    assert dataset.split("test").inputs.shape[0] == 2115
    # a second fetch checks and keeps the files: no request
    before = len(server.requests)
    fetch("mnist01", mirror=server.url)
    assert len(server.requests) == before


def test_a_wrong_file_is_refused_and_nothing_is_written(served, tmp_path):
    server, root = served
    (root / MNIST01[0]).write_bytes(b"not the reference file")
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match=rf"sent a file whose SHA256 is [0-9a-f]{{64}}, but {MNIST01[0]} has "
                                           rf"{REFERENCE_SHA256[MNIST01[0]]}: not the recorded file"):
        fetch("mnist01", target, mirror=server.url)
    assert _leftovers(target) == []  # no half-written file, no temporary file


def test_a_corrupted_cached_file_is_replaced(served, tmp_path):
    server, _ = served
    target = tmp_path / "data"
    fetch("mnist01", target, mirror=server.url)
    (target / MNIST01[1]).write_bytes(b"truncated")
    fetch("mnist01", target, mirror=server.url)
    assert hashlib.sha256((target / MNIST01[1]).read_bytes()).hexdigest() == REFERENCE_SHA256[MNIST01[1]]


def test_a_missing_file_is_a_clear_error(served, tmp_path):
    server, root = served
    (root / MNIST01[3]).unlink()
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match=rf"answered 404 .*{MNIST01[3]} is not there; nothing was written"):
        fetch("mnist01", target, mirror=server.url)
    assert MNIST01[3] not in _leftovers(target) and not [n for n in _leftovers(target) if n.endswith(".part")]


@pytest.mark.slow
def test_server_down_and_timeout(served, tmp_path):
    server, root = served
    server.close()
    with pytest.raises(DatasetError, match="Could not download .*no network, a timeout after 5 s, or the server is down"):
        fetch("mnist01", tmp_path / "a", mirror=server.url, timeout=5)
    assert _leftovers(tmp_path / "a") == []
    slow = _Server(root, delay=3.0)
    try:
        with pytest.raises(DatasetError, match=r"Could not download .*timed out"):
            fetch("mnist01", tmp_path / "b", mirror=slow.url, timeout=0.5)
    finally:
        slow.close()
    assert _leftovers(tmp_path / "b") == []


def test_idx_files_are_checked_by_md5(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    for name in IDX_MD5:
        (root / name).write_bytes(b"\x1f\x8b not mnist")
    server = _Server(root)
    try:
        with pytest.raises(DatasetError, match=r"MD5 is [0-9a-f]{32}, but train-images-idx3-ubyte.gz has f68b3c2d"):
            fetch("mnist01-idx", tmp_path / "data", mirror=server.url)
    finally:
        server.close()
    assert _leftovers(tmp_path / "data") == []


def test_what_each_dataset_needs_and_where_it_comes_from():
    assert files_for("mnist01") == MNIST01
    assert len(files_for("mnist-umap-d3-r5")) == 30 and files_for("mnist-umap-d3-r5")[0] == "mnist-umap-3-0-train.csv.gz"
    assert files_for("mnist36-ds")[0] == "mnist-simple-3-deskewed-train.csv.gz"
    assert sorted(files_for("mnist01-idx")) == sorted(IDX_MD5)
    assert files_for("simple-seq") == [] and files_for("digits01") == []
    every = {f for name in ("mnist01", "mnist-pca-r3-p8", "mnist-umap-d2-r5", "mnist-umap-d3-r5", "mnist8-ds")
             for f in files_for(name)}
    assert every <= set(REFERENCE_SHA256)  # a checksum for every file a dataset reads
    assert source_url("mnist-tsne-2-0-test.csv.gz").startswith(
        "https://raw.githubusercontent.com/CLEconomides/RVQE/077c7aa7d2c9d8cdbed84f8a5f5e6cd319b2e5d2/RVQE/datasets/res/")
    assert "400a5ebcaa5c3c3b8f6cb423cec52b8e7c94e393" in source_url(MNIST01[0])
    assert source_url("t10k-images-idx3-ubyte.gz") == "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"
    with pytest.raises(ValueError, match="Unknown dataset 'mnist99'"):
        fetch("mnist99")
    with pytest.raises(ValueError, match="No checksum is recorded for 'x.csv.gz'"):
        source_url("x.csv.gz")
    with pytest.raises(ValueError, match="timeout must be positive seconds"):
        fetch("mnist01", timeout=0)


def test_recorded_checksums_match_the_shared_copies(shared_dir):
    folder = shared_dir / "data/rvqe-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(REFERENCE_SHA256)
    sample = sorted(REFERENCE_SHA256)[::17]
    for name in sample:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == REFERENCE_SHA256[name]


def test_without_data_the_error_names_fetch():
    with pytest.raises(DatasetError, match=r"pass data_dir, the folder holding them, or download them into the cache "
                                           r"\(.*absent\) with `qrnn datasets fetch mnist01`"):
        get_dataset("mnist01")
