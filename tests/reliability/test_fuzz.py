"""Property-based fuzzing (hypothesis) of the files the tool reads: checkpoint meta, user datasets
(csv and npz) and sweep plans and summaries. Whatever arrives, the answer is the result or a clear
error of the documented kind (exit 1 or 2 through the command line), never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.errors import DatasetError
from qrnn_qiskit.data.userdata import load_user_dataset

from .conftest import train_tiny

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
FIELDS = ("step", "seconds", "best_validation_loss", "settings", "rng_state", "validation_rng_state", "model",
          "dataset", "noise", "kind", "format", "version")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("fuzz")
    return train_tiny(tmp / "run")


def _clear(result, codes=(0, 1, 2)) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in codes, result.output
    if result.exit_code:
        assert "Error: " in result.output and "Traceback" not in result.output


@FUZZ
@given(field=st.sampled_from(FIELDS), value=JSON, nested=st.booleans())
def test_any_checkpoint_meta_gets_an_answer_or_a_clear_error(run, tmp_path_factory, field, value, nested):
    folder = tmp_path_factory.mktemp("meta")
    with np.load(run / "final.npz") as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(arrays["meta"].tobytes())
    if nested and isinstance(meta.get(field), dict) and meta[field]:
        meta[field][sorted(meta[field])[0]] = value  # one field inside (settings.steps, model.workspace, ...)
    else:
        meta[field] = value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(folder / "final.npz", **arrays)
    # no option is given, so a refusal is about the file: exit 1, never a usage error
    _clear(CliRunner().invoke(main, ["resume", str(folder / "final.npz")]), codes=(0, 1))
    _clear(CliRunner().invoke(main, ["eval", str(folder / "final.npz"), "--limit", "2"]), codes=(0, 1))


CELL = st.one_of(st.integers(-3, 300), st.sampled_from(["train", "validate", "test", "split", "", "x", "1e3", " 2"]))


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=6), min_size=0, max_size=12))
def test_any_csv_dataset_loads_or_gets_a_dataset_error(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_text("".join(",".join(str(c) for c in row) + "\n" for row in rows))
    try:
        dataset = load_user_dataset(path)
    except DatasetError as exc:
        assert str(path) in str(exc)
        return
    dataset.batch(2, np.random.default_rng(0))  # what loads also serves batches


ARRAY = st.one_of(
    st.builds(lambda shape, fill: np.full(shape, fill), st.lists(st.integers(0, 4), max_size=3).map(tuple),
              st.one_of(st.integers(-2, 300), st.floats(allow_nan=True), st.booleans())),
    st.builds(np.array, st.lists(st.sampled_from(["train", "validate", "test", "other"]), max_size=6)),
)
KEYS = ("sequences", "labels", "inputs", "targets", "scored", "split", "input_width", "num_classes")


@FUZZ
@given(arrays=st.dictionaries(st.sampled_from(KEYS), ARRAY, min_size=1, max_size=6))
def test_any_npz_dataset_loads_or_gets_a_dataset_error(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **arrays)
    try:
        dataset = load_user_dataset(path)
    except DatasetError as exc:
        assert str(path) in str(exc)
        return
    dataset.batch(2, np.random.default_rng(0))


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=JSON, summary=JSON)
def test_any_sweep_plan_or_summary_gets_an_answer_or_a_clear_error(run, tmp_path_factory, plan, summary):
    args = ["sweep", "--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1", "--degree", "1", "--steps", "2",
            "--validate-every", "1", "--seeds", "1"]
    root = tmp_path_factory.mktemp("sweep")
    (root / "plan.json").write_text(json.dumps(plan))
    _clear(CliRunner().invoke(main, [*args, "--out", str(root)]))
    fresh = tmp_path_factory.mktemp("sweep")
    assert CliRunner().invoke(main, [*args, "--out", str(fresh)]).exit_code == 0
    (fresh / "seed-1" / "summary.json").write_text(json.dumps(summary))  # damaged: the trial is continued
    result = CliRunner().invoke(main, [*args, "--out", str(fresh), "--json"])
    _clear(result)
    assert result.exit_code == 0
    shutil.rmtree(root)
    shutil.rmtree(fresh)


def test_the_case_the_fuzzer_found(tmp_path):
    """inputs and targets beside a stray 'sequences' (no labels): sequence to sequence, as its
    complete pair says (it was a KeyError: 'labels')."""
    path = tmp_path / "data.npz"
    np.savez(path, inputs=np.zeros((10, 3), int), targets=np.zeros((10, 3), int), sequences=np.zeros((2, 2)))
    dataset = load_user_dataset(path)
    assert dataset.split("train").inputs.shape == (6, 3)
