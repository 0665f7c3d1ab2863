"""Datasets: shapes, targets, scored steps, and malformed files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from qrnn_qiskit.exceptions import DatasetError
from qrnn_qiskit.training import get_dataset


def test_simple_seq():
    ds = get_dataset("simple-seq", sentence_length=8)
    batch = ds.batch(6, np.random.default_rng(0))
    assert batch.inputs.shape == batch.targets.shape == (6, 8)
    for row in batch.inputs:
        assert row.tolist() in ([0, 1, 2, 3, 0, 1, 2, 3], [4] * 8)
    inputs, targets = batch.engine_arrays()
    np.testing.assert_array_equal(targets, batch.inputs[:, 1:])  # input t predicts target t + 1
    assert ds.scored().all() and ds.scored().shape == (7,)


def _write(path, rows):
    with gzip.open(path, "wt") as handle:
        for row in rows:
            handle.write(",".join(str(v) for v in row) + "\n")


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for digit in (0, 1):
        for split in ("train", "validate", "test"):
            _write(tmp_path / f"mnist-simple-{digit}-{split}.csv.gz", rng.integers(0, 8, (3 + digit, 100)))
    return tmp_path


def test_mnist_shapes_and_targets(tiny_mnist):
    ds = get_dataset("mnist01", data_dir=tiny_mnist)
    batch = ds.batch(4, np.random.default_rng(1))  # 4 per digit
    assert batch.inputs.shape == (8, 100)
    assert batch.inputs.max() <= 3  # two scanline bits
    assert np.all(batch.targets[:, :-1] == 0)
    np.testing.assert_array_equal(batch.targets[:, -1], [0] * 4 + [1] * 4)
    assert ds.scored().sum() == 1 and ds.scored()[-1]
    assert ds.split("test").inputs.shape == (7, 100)
    assert ds.describe()["classes"] == 2


def test_mnist_shared_files(shared_dir):
    ds = get_dataset("mnist01", data_dir=shared_dir / "data/rvqe-mnist")
    test = ds.split("test")
    assert test.inputs.shape == (2115, 100)  # 980 zeros + 1135 ones
    assert (test.labels == 0).sum() == 980
    # bit value 1 is background: the corner pixel of a centred digit is background
    assert np.mean((test.inputs[:, 0] >> 1) & 1) > 0.95


@pytest.mark.parametrize(
    ("rows", "match"),
    [([[1] * 99], "expected 100 pixel codes, got 99"), ([[9] * 100], r"must lie in 0-7"), ([["a"] * 100], "must be integers")],
)
def test_malformed_csv(tiny_mnist, rows, match):
    _write(tiny_mnist / "mnist-simple-0-test.csv.gz", rows)
    with pytest.raises(DatasetError, match=match):
        get_dataset("mnist01", data_dir=tiny_mnist).split("test")


def test_missing_inputs(tmp_path):
    with pytest.raises(DatasetError, match="pass --data-dir"):
        get_dataset("mnist01")
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset("mnist01", data_dir=tmp_path / "nope")
    with pytest.raises(DatasetError, match="Missing data file"):
        get_dataset("mnist36", data_dir=tmp_path).split("test")
    (tmp_path / "mnist-simple-0-test.csv.gz").write_bytes(b"not gzip")
    (tmp_path / "mnist-simple-1-test.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="not a readable gzip csv"):
        get_dataset("mnist01", data_dir=tmp_path).split("test")
    with pytest.raises(ValueError, match="Unknown dataset 'mnist99'"):
        get_dataset("mnist99")
