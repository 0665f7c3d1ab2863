"""Datasets: shapes, targets, scored steps, and malformed files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.registry import get_dataset


def test_simple_seq():
    ds = get_dataset("simple-seq", sentence_length=8)
    batch = ds.batch(6, np.random.default_rng(0))
    assert batch.inputs.shape == batch.targets.shape == (6, 8)
    for row in batch.inputs:
        assert row.tolist() in ([0, 1, 2, 3, 0, 1, 2, 3], [4] * 8)
    inputs, targets = batch.engine_arrays()
    np.testing.assert_array_equal(targets, batch.inputs[:, 1:])  # input t predicts target t + 1
    assert ds.scored().all() and ds.scored().shape == (7,)


def test_first_sequences_of_a_split():
    whole = get_dataset("simple-seq", sentence_length=5).split("test")
    two = whole.first(1)
    np.testing.assert_array_equal(two.inputs, whole.inputs[:1])
    assert whole.first(None) is whole and whole.first(10).inputs.shape[0] == 2
    for bad in (0, -3, True, 1.5):
        with pytest.raises(ValueError, match=r"limit must be >= 1 sequences, got"):
            whole.first(bad)


def test_simple_bits_needs_memory():
    ds = get_dataset("simple-bits", sentence_length=5)
    assert ds.input_width == 1 and ds.describe()["scored_steps"] == 4
    inputs, targets = ds.split("test").engine_arrays()
    np.testing.assert_array_equal(inputs, [[0, 1, 0, 1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(targets, [[1, 0, 1, 0], [1, 1, 1, 1]])
    # the same input (1 at step 1) asks for different answers: only a memory of step 0 tells them apart
    assert inputs[0, 1] == inputs[1, 1] and targets[0, 1] != targets[1, 1]
    with pytest.raises(ValueError, match=r"sentence_length \(the sequence length\) must be >= 2 for simple-bits, got 1"):
        get_dataset("simple-bits", sentence_length=1)


@pytest.mark.parametrize("name", ["simple-seq", "simple-bits", "simple-quotes"])
def test_memorisation_validation_batches_hold_every_sequence(name):
    # a validation batch drawn with replacement can miss a sequence and report a loss the model
    # has not earned (simple-seq, batch 2: one draw in four is the same sequence twice)
    ds = get_dataset(name)
    whole = ds.split("validate")
    rng = np.random.default_rng(0)
    for _ in range(5):
        batch = ds.batch(1, rng, "validate")
        np.testing.assert_array_equal(batch.inputs, whole.inputs)
    assert ds.batch(50, rng, "train").inputs.shape[0] == 50


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
    [([[1] * 99], "expected 100 values, got 99"), ([[9] * 100], r"must lie in 0-7"), ([["a"] * 100], "must be integers")],
)
def test_malformed_csv(tiny_mnist, rows, match):
    _write(tiny_mnist / "mnist-simple-0-test.csv.gz", rows)
    with pytest.raises(DatasetError, match=match):
        get_dataset("mnist01", data_dir=tiny_mnist).split("test")


def test_missing_inputs(tmp_path):
    with pytest.raises(DatasetError, match="pass data_dir, the folder holding them"):
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


def test_elman_xor_targets_and_scoring():
    ds = get_dataset("elman-xor", sentence_length=9)
    batch = ds.batch(5, np.random.default_rng(2))
    x = batch.inputs
    np.testing.assert_array_equal(x[:, 2::3], x[:, 0::3] ^ x[:, 1::3])  # third = first xor second
    assert np.all(batch.targets[:, 0::3] == 2) and np.all(batch.targets[:, 1::3] == 2)  # marker [1, 0]
    np.testing.assert_array_equal(batch.targets[:, 2::3], x[:, 2::3])
    # engine step t predicts target t + 1: the XOR targets 2, 5, 8 are predicted at steps 1, 4, 7
    np.testing.assert_array_equal(np.flatnonzero(ds.scored()), [1, 4, 7])


def test_elman_letter_words():
    ds = get_dataset("elman-letter", sentence_length=30)
    batch = ds.batch(3, np.random.default_rng(4))
    for row, target in zip(batch.inputs, batch.targets):
        text = ds.render(row)
        for word in ("ba", "dii", "guuu"):
            text = text.replace(word, "")
        assert set(text) <= set("bdgaiu") and len(text) <= 4  # only a truncated last word remains
        np.testing.assert_array_equal(target, np.where(row >= 4, 7, row))  # consonants -> 111


def test_dna_marks_and_targets():
    ds = get_dataset("dna", sentence_length=20)
    batch = ds.batch(50, np.random.default_rng(0))
    for row, target in zip(batch.inputs, batch.targets):
        marks = np.flatnonzero(row >= 4)
        assert len(marks) == 1 and 1 <= marks[0] < 10
        base = row[marks[0]] - 4
        assert np.all(target[: marks[0] + 1] == 0) and np.all(target[marks[0] + 1 :] == base)
    assert ds.scored().sum() == 1 and ds.scored()[-1]
    np.testing.assert_array_equal(ds.split("test").inputs, ds.split("test").inputs)  # fixed seed


def test_quotes_advice_masks_consonants():
    ds = get_dataset("simple-quotes")
    batch = ds.split("test")
    assert batch.inputs.shape == (6, 70) and ds.render(batch.inputs[0]).startswith("to keep your balance")
    targets = batch.engine_arrays()[1]
    sampled = ds.sampled(targets)
    letters = np.array([[ds.ALPHABET[t] for t in row] for row in targets])
    assert np.all(sampled == ~np.isin(letters, list(ds.CONSONANTS)))


@pytest.mark.slow
def test_label_words_for_wide_labels(shared_dir):
    data = shared_dir / "data/rvqe-mnist"
    mnist8 = get_dataset("mnist8", data_dir=data)  # 9 classes: 4-bit label in two 3-bit words
    batch = mnist8.batch(1, np.random.default_rng(0))
    assert mnist8.input_width == 3 and mnist8.scored().sum() == 2
    np.testing.assert_array_equal(batch.targets[:, -2:], [[label >> 3, label & 7] for label in range(9)])
    umap = get_dataset("mnist-umap-d3-r5", data_dir=data)  # 5 bit-planes, pad 1 (the reference's layout)
    batch = umap.batch(1, np.random.default_rng(0))
    assert batch.inputs.shape == batch.targets.shape == (10, 5 + 2 - 1) and umap.input_width == 3
    np.testing.assert_array_equal(batch.inputs[:, 5], 0)
    np.testing.assert_array_equal(batch.targets[:, 4:], [[d >> 3, d & 7] for d in range(10)])
    pca = get_dataset("mnist-pca-r3-p8", data_dir=data)
    assert pca.sequence_length == 8 + 1 + 2 and pca.num_classes == 10
    parity = get_dataset("mnist-even-odd", data_dir=data).batch(1, np.random.default_rng(0))
    np.testing.assert_array_equal(parity.targets[:, -1], [d % 2 for d in range(10)])
    gen = get_dataset("mnist01-gen", data_dir=data)
    batch = gen.batch(2, np.random.default_rng(0))
    np.testing.assert_array_equal(batch.inputs, batch.targets)
    np.testing.assert_array_equal(batch.inputs[:, 0], [0, 0, 1, 1])
    assert gen.scored().all()


def test_idx_mnist(tmp_path):
    rng = np.random.default_rng(0)

    def write_idx(name, array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as handle:
            handle.write(header + array.astype(np.uint8).tobytes())

    images = np.zeros((1200, 28, 28))
    images[:, 4:14, 4:24] = 255  # top half of the central crop is ink
    labels = np.repeat([0, 1], 600)
    write_idx("train-images-idx3-ubyte", images)
    write_idx("train-labels-idx1-ubyte", labels)
    write_idx("t10k-images-idx3-ubyte", images[:10])
    write_idx("t10k-labels-idx1-ubyte", labels[:10])
    ds = get_dataset("mnist01-idx", data_dir=tmp_path)
    train = ds.split("train")
    assert train.inputs.shape == (200, 100) and ds.split("validate").inputs.shape == (1000, 100)
    # rows 0-4 are ink (bit 0) in both scanlines' first half; background bit is 1
    assert train.inputs[0, 0] == 0 and train.inputs[0, 99] == 3
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(8)))
    with pytest.raises(DatasetError, match="truncated|IDX"):
        ds.split("test")
    del rng


def test_digits(tmp_path):
    pytest.importorskip("sklearn")
    ds = get_dataset("digits01")
    test = ds.split("test")
    assert test.inputs.shape[1] == 64 and set(test.labels.tolist()) == {0, 1}
    assert len(ds.split("train").labels) + len(ds.split("validate").labels) + len(test.labels) == 360
    assert get_dataset("digits").scored().sum() == 2  # ten classes: 4-bit label, two words


def test_bundled_digits_are_load_digits(monkeypatch):
    """The digits read straight from scikit-learn's bundled CSV are load_digits' own, bit for bit;
    where that file cannot be read, load_digits itself is the fallback."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from qrnn_qiskit.data import images as image_data

    expected = load_digits()
    image_data.bundled_digits.cache_clear()
    pixels, targets = image_data.bundled_digits()
    assert pixels.shape == (1797, 8, 8) and pixels.dtype == expected.images.dtype
    np.testing.assert_array_equal(pixels, expected.images)
    np.testing.assert_array_equal(targets, expected.target)
    assert not pixels.flags.writeable

    for elsewhere in (image_data.Path("/nonexistent/digits.csv.gz"), None):  # moved, or no folder to look in
        monkeypatch.setattr(image_data, "_bundled_digits_file", lambda where=elsewhere: where)
        image_data.bundled_digits.cache_clear()
        try:
            fallback_pixels, fallback_targets = image_data.bundled_digits()
        finally:
            image_data.bundled_digits.cache_clear()
        np.testing.assert_array_equal(fallback_pixels, expected.images)
        np.testing.assert_array_equal(fallback_targets, expected.target)


def test_digits_do_not_import_sklearn_datasets():
    """Loading the Quickstart's data leaves sklearn.datasets (and scipy.stats) unimported."""
    pytest.importorskip("sklearn")
    import subprocess
    import sys

    code = ("import sys; from qrnn_qiskit.data import get_dataset; ds = get_dataset('digits01'); "
            "ds.split('train'); print(sorted(m for m in ('sklearn.datasets', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("name", "length", "minimum"), [("elman-xor", 2, 3), ("elman-letter", 1, 2), ("dna", 3, 4), ("simple-seq", 1, 2)])
def test_too_short_sequences(name, length, minimum):
    with pytest.raises(ValueError, match=rf"sentence_length \(the sequence length\) must be >= {minimum} for {name}, got {length}"):
        get_dataset(name, sentence_length=length)


def test_eval_defaults_to_the_training_data_folder(tiny_mnist, tmp_path):
    """`qrnn eval` of an MNIST checkpoint finds the csv.gz folder it was trained from; --data-dir overrides."""
    import json
    import shutil

    from click.testing import CliRunner

    from qrnn_qiskit.cli import main

    data = tmp_path / "data"  # a folder of its own, so that it can be moved away below
    data.mkdir()
    for csv in tiny_mnist.glob("*.csv.gz"):
        shutil.copy(csv, data)
    out = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "--dataset", "mnist01", "--data-dir", str(data), "-W", "1",
                                        "-S", "0", "--order", "1", "--degree", "1", "--steps", "2", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sequences"] == 3 + 4  # the tiny test split: 3 zeros, 4 ones
    elsewhere = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--data-dir", str(tmp_path / "none")])
    assert elsewhere.exit_code != 0 and "none" in elsewhere.output
    moved = tmp_path / "moved"
    data.rename(moved)  # the stored folder is gone: the message says where it came from
    gone = CliRunner().invoke(main, ["eval", str(out / "best.npz")])
    assert gone.exit_code != 0
    assert f"{data} does not exist: it is the folder" in gone.output and "the data cache has no copy" in gone.output
    assert "pass --data-dir, or run `qrnn datasets fetch mnist01`" in gone.output
    assert CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--data-dir", str(moved)]).exit_code == 0
    # a run trained elsewhere (a committed one) finds the data cache of `qrnn datasets fetch`
    cached = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--json"], env={"QRNN_DATA_DIR": str(moved)})
    assert cached.exit_code == 0, cached.output
    assert json.loads(cached.stdout)["sequences"] == 3 + 4


def test_umap_and_tsne_follow_the_reference_layout_by_hand(tmp_path):
    """Hand-written: one image per digit with coordinates (200, 100) = bit-planes 11001000 and
    01100100. D=2, R=3: planes [1,0] [1,1] [0,1] = tokens 2, 3, 1; the 4-bit label in 2-bit words,
    LL=2: inputs = planes + [0], targets = [0, 0] + label words (mnistumap.py at 400a5eb)."""
    for kind in ("umap", "tsne"):
        for digit in range(10):
            for split in ("train", "validate", "test"):
                _write(tmp_path / f"mnist-{kind}-2-{digit}-{split}.csv.gz", np.array([[200, 100]]))
        ds = get_dataset(f"mnist-{kind}-d2-r3", data_dir=tmp_path)
        test = ds.split("test")
        assert ds.input_width == 2 and ds.sequence_length == 4 and ds.num_classes == 10
        np.testing.assert_array_equal(test.inputs[7], [2, 3, 1, 0])
        np.testing.assert_array_equal(test.targets[7], [0, 0, 1, 3])  # 7 = 01 11
        inputs, targets = test.engine_arrays()
        # offset by one: the first label word is predicted after bit-plane 2 of 3, before the last
        np.testing.assert_array_equal(inputs[7], [2, 3, 1])
        np.testing.assert_array_equal(targets[7], [0, 1, 3])
        np.testing.assert_array_equal(ds.scored(), [False, True, True])
        assert (inputs == inputs[0]).all()  # same image, ten labels: label words are never fed back
    # one label word (D=4): the last bit-plane is never read
    for digit in range(10):
        for split in ("train", "validate", "test"):
            _write(tmp_path / f"mnist-umap-4-{digit}-{split}.csv.gz", np.array([[255, 0, 255, 0]]))
    wide = get_dataset("mnist-umap-d4-r2", data_dir=tmp_path)
    inputs, targets = wide.split("test").engine_arrays()
    assert wide.sequence_length == 2 and inputs.shape == (10, 1)
    np.testing.assert_array_equal(inputs[:, 0], 0b1010)
    np.testing.assert_array_equal(targets[:, 0], range(10))


def test_tsne_shared_files(shared_dir):
    ds = get_dataset("mnist-tsne-d2-r5", data_dir=shared_dir / "data/rvqe-mnist")
    test = ds.split("test")
    assert ds.input_width == 2 and ds.sequence_length == 5 + 2 - 1 and ds.scored().sum() == 2
    assert test.inputs.shape == (10000, 6) and np.bincount(test.labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the standard MNIST test set
    np.testing.assert_array_equal(test.targets[:, -2:], np.stack([test.labels >> 2, test.labels & 3], axis=1))
