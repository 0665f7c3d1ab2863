"""A researcher's own data (--dataset PATH): .npz and .csv files train, evaluate and build like the
built-in sets; wrong files get clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.registry import get_dataset


def _sequences(path, count=12, length=5):
    """Count up modulo 4 from a random start: the next token is the input plus one."""
    starts = np.arange(count) % 4
    inputs = (starts[:, None] + np.arange(length)) % 4
    np.savez(path, inputs=inputs, targets=inputs, scored=np.ones(length - 1, bool),
             split=np.array(["train", "validate", "test"] * (count // 3)))
    return path


def _labelled_csv(path, rows=None):
    rows = rows or [("train", 0, [1, 1, 0]), ("train", 1, [0, 0, 1]), ("validate", 0, [1, 1, 1]),
                    ("validate", 1, [0, 0, 0]), ("test", 0, [1, 0, 1]), ("test", 1, [0, 1, 0])]
    path.write_text("split,label,x1,x2,x3\n" + "".join(f"{s},{y},{','.join(map(str, x))}\n" for s, y, x in rows))
    return path


def test_npz_sequences_by_hand(tmp_path):
    ds = get_dataset(str(_sequences(tmp_path / "count.npz")))
    assert ds.input_width == 2 and ds.sequence_length == 5 and ds.scored().all()
    test = ds.split("test")
    np.testing.assert_array_equal(test.inputs[0], [2, 3, 0, 1, 2])  # rows 2, 5, 8, 11 are the test split
    assert test.inputs.shape == (4, 5)
    inputs, targets = test.engine_arrays()
    np.testing.assert_array_equal(targets[0], [3, 0, 1, 2])  # step t predicts the next token
    assert ds.batch(7, np.random.default_rng(0)).inputs.shape == (7, 5)


def test_csv_labelled_layout_by_hand(tmp_path):
    ds = get_dataset(str(_labelled_csv(tmp_path / "bits.csv")))
    assert ds.input_width == 1 and ds.num_classes == 2 and ds.label_words == 1
    test = ds.split("test")
    # features, then the label word (LL - 1 = 0 zero words); targets hold the label at the end
    np.testing.assert_array_equal(test.inputs, [[1, 0, 1, 0], [0, 1, 0, 1]])
    np.testing.assert_array_equal(test.targets, [[0, 0, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(ds.scored(), [False, False, True])


def test_own_data_trains_evaluates_and_builds(tmp_path):
    data = str(_sequences(tmp_path / "count.npz", count=30))
    out = tmp_path / "run"
    args = ["train", "--dataset", data, "-W", "2", "-S", "1", "-k", "1", "-d", "2", "--batch-size", "4",
            "--learning-rate", "0.1", "--initial-weights-spread", "0.5", "--steps", "60", "--out", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert summary["best_validation_loss"] < first["validation_loss"]  # it learns
    evaluated = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--json"])  # the dataset from the checkpoint
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["sequences"] == 10
    built = CliRunner().invoke(main, ["build", "--checkpoint", str(out / "best.npz"), "--dataset", data, "--sample", "0",
                                      "--json", "--no-compare"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["length"] == 4


@pytest.mark.parametrize(("content", "message"), [
    ("split,label,x1,x2\ntrain,0,1,0\ntrain,1,1\n", r"line 3: 1 tokens, but the first sequence has 2.*ragged"),
    ("train,0,1,0\nvalidate,1,0,1\ntest,-1,1,1\n", r"labels must lie in 0\.\.1 .* got labels in \[-1, 1\]"),
    ("train,0,1,0\ntrain,1,0,1\ntest,1,1,1\n", r"the validate split is empty"),
    ("train,0,1,x\n", r"line 1: labels and tokens must be integers"),
    ("train,0,1,0\nvalidate,1,0,1\ntest,1,1,-2\n", r"negative tokens"),
    ("later,0,1,0\nvalidate,1,0,1\ntest,1,1,1\n", r"split values must be 0/1/2 or train/validate/test, got \['later'\]"),
    ("", r"holds no sequences"),
])
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        get_dataset(str(path))


def test_bad_npz_files(tmp_path):
    def npz(**arrays):
        np.savez(tmp_path / "bad.npz", **arrays)
        return str(tmp_path / "bad.npz")

    seq = np.zeros((5, 4), int)
    with pytest.raises(DatasetError, match=r"has the arrays \['x'\]; expected 'inputs' and 'targets'"):
        get_dataset(npz(x=seq))
    with pytest.raises(DatasetError, match=r"'targets' must have the shape of 'inputs' \(5, 4\), got \(5, 3\)"):
        get_dataset(npz(inputs=seq, targets=seq[:, :3]))
    with pytest.raises(DatasetError, match=r"token 5, but input_width=2 allows 0\.\.3"):
        get_dataset(npz(inputs=seq + 5, targets=seq, input_width=2))
    with pytest.raises(DatasetError, match=r"'scored' must be booleans for the 3 engine steps"):
        get_dataset(npz(inputs=seq, targets=seq, scored=np.ones(4, bool)))
    with pytest.raises(DatasetError, match=r"must be integer tokens, got dtype float64"):
        get_dataset(npz(inputs=seq + 0.5, targets=seq))
    with pytest.raises(DatasetError, match=r"holds pickled objects, which are never loaded"):
        get_dataset(npz(inputs=np.array([{"a": 1}], dtype=object), targets=seq))
    with pytest.raises(DatasetError, match=r"'split' must hold one entry per sequence \(5\)"):
        get_dataset(npz(inputs=seq, targets=seq, split=np.zeros(2, int)))
    with pytest.raises(DatasetError, match=r"No dataset file at .*missing.npz"):
        get_dataset(str(tmp_path / "missing.npz"))
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"is not a dataset file: a dataset file is an \.npz archive"):
        get_dataset(str(tmp_path / "garbage.npz"))


def test_a_class_absent_from_a_split_is_skipped_when_batching(tmp_path):
    rows = [("train", 0, [1, 1]), ("train", 1, [0, 0]), ("validate", 0, [1, 0]), ("test", 1, [0, 1])]
    ds = get_dataset(str(_labelled_csv(tmp_path / "gap.csv", rows)))
    batch = ds.batch(3, np.random.default_rng(0), "validate")  # no class-1 sequence in validate
    np.testing.assert_array_equal(batch.labels, [0, 0, 0])
    assert ds.batch(2, np.random.default_rng(0)).labels.tolist() == [0, 0, 1, 1]


def test_a_relative_dataset_path_is_stored_resolved(tmp_path, monkeypatch):
    """Trained with --dataset count.npz from its folder, the run evaluates from another folder."""
    (tmp_path / "data").mkdir()
    _sequences(tmp_path / "data" / "count.npz", count=30)
    monkeypatch.chdir(tmp_path / "data")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "count.npz", "-W", "2", "-S", "0", "-k", "1", "-d", "1",
                                       "--steps", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "config.json").read_text())["settings"]["dataset"]
    assert stored == str(tmp_path / "data" / "count.npz")
    monkeypatch.chdir(tmp_path)
    evaluated = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
