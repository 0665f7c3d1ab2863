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
    assert _leftovers(cache) == sorted([".qrnn-stamps.json", *MNIST01])  # the files and their stamps
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


class _Dribble:
    """A server on 127.0.0.1 that answers HTTP and then sends one byte every 0.1 s, forever;
    with ``garbage``, a server that answers something other than HTTP."""

    def __init__(self, garbage: bool = False) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, args=(garbage,), daemon=True).start()

    def _serve(self, garbage: bool) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            if garbage:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01binary\r\n\r\n")
                conn.close()
                continue
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000000\r\n\r\n")
            try:
                while not self.stop.is_set():
                    conn.sendall(b"x")
                    time.sleep(0.1)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_download_that_never_ends_stops_at_its_total_timeout(tmp_path):
    """Each read arrives within the per-read timeout, so only the total bounds it."""
    server = _Dribble()
    try:
        started = time.monotonic()
        with pytest.raises(DatasetError, match=r"took more than 1\.5 s in all \(total_timeout\); nothing was written"):
            fetch("mnist01", tmp_path / "a", mirror=server.url, timeout=5, total_timeout=1.5)
        assert time.monotonic() - started < 10
    finally:
        server.close()
    assert _leftovers(tmp_path / "a") == []
    result = CliRunner().invoke(main, ["datasets", "fetch", "mnist01", "--dir", str(tmp_path / "b"), "--mirror",
                                       "http://127.0.0.1:9/", "--total-timeout", "nan"])
    assert result.exit_code == 2 and "--total-timeout must be positive seconds, got nan" in result.output


def test_a_mirror_that_does_not_speak_http_is_a_clear_error(tmp_path):
    server = _Dribble(garbage=True)
    try:
        with pytest.raises(DatasetError, match=r"Could not download http://127\.0\.0\.1:\d+/mnist-simple-0-train"):
            fetch("mnist01", tmp_path / "a", mirror=server.url, timeout=5)
    finally:
        server.close()
    assert _leftovers(tmp_path / "a") == []


def test_a_killed_downloads_part_file_is_removed_on_the_next_run(served, tmp_path):
    import os

    server, _ = served
    target = tmp_path / "data"
    target.mkdir()
    stale, live = target / f".{MNIST01[0]}.abc.part", target / f".{MNIST01[1]}.def.part"
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    os.utime(stale, (time.time() - 120, time.time() - 120))  # untouched for longer than the timeout
    fetch("mnist01", target, mirror=server.url, timeout=60)
    assert not stale.exists() and live.exists()  # a download still writing (touched within the timeout) is left


def test_a_cached_file_changed_after_fetch_is_refused_on_read(served, tmp_path):
    """The recompressed half file of the review: fetched and stamped, then rewritten with half its
    lines; reading it names the file instead of evaluating on fewer images."""
    import gzip

    server, _ = served
    target = tmp_path / "data"
    fetch("mnist01", target, mirror=server.url)
    assert get_dataset("mnist01", data_dir=target).split("test").inputs.shape[0] > 0  # reads while unchanged
    path = target / "mnist-simple-0-test.csv.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(lines[: len(lines) // 2])))
    with pytest.raises(DatasetError, match=r"mnist-simple-0-test\.csv\.gz changed since `qrnn datasets fetch` "
                                           r"checked it .*its sha256 no longer matches"):
        get_dataset("mnist01", data_dir=target).split("test")
    fetch("mnist01", target, mirror=server.url)  # fetch replaces it, and it reads again
    assert get_dataset("mnist01", data_dir=target).split("test").inputs.shape[0] > 0
