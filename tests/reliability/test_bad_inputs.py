"""Every bad input of :mod:`tests.reliability.cases` through the real command line: the exit code
it must have, a message naming the option, file or field, and no traceback. The damaged files
are made here from a real run's checkpoint."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main

from .cases import CASES
from .conftest import train_tiny

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bad")
    train_tiny(tmp / "run")
    shutil.copytree(tmp / "run", tmp / "other")
    shutil.copytree(tmp / "run", tmp / "cut")
    (tmp / "cut" / "final.npz").unlink()
    (tmp / "empty").mkdir()
    (tmp / "text").write_text("hello, I am not a checkpoint\n")
    np.save(tmp / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp / "pickled.npz", "w") as archive:
        archive.write(tmp / "pickled.npy", "parameters.npy")
    data = (tmp / "run" / "final.npz").read_bytes()
    (tmp / "truncated.npz").write_bytes(data[: len(data) // 2])
    _forged(tmp / "forged.npz", ("parameters", "meta"))
    return tmp


def _forged(path: Path, names) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(f"{name}.npy", header.getvalue() + b"\0" * 16)


def _tampered(source: Path, target: Path, spec: str) -> Path:
    """A copy of the checkpoint ``source`` with its meta (``meta:...``) or state (``state:...``) changed."""
    with np.load(source) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(arrays["meta"].tobytes())
    kind, _, change = spec.partition(":")
    if kind == "state":
        name = "state/" + change.split("=")[0]
        arrays[name] = arrays[name][:1]
    elif change in ("list", "string", "null"):
        meta = {"list": [1, 2], "string": "meta", "null": None}[change]
    else:
        key, _, value = change.partition("=")
        holder, key = (meta["settings"], key.split(".")[1]) if "." in key else (meta, key)
        holder[key] = json.loads(value) if value != "NaN" else float("nan")
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(target, **arrays)
    return target


def _dataset(tmp: Path, spec: str) -> Path:
    kind, _, name = spec.partition(":")
    path = tmp / f"{name}.{kind}"
    if kind == "csv":
        text = {"token": "train,0,1,2,3\n" * 3 + "validate,1,1,2,1048576\ntest,0,1,2,3\n", "ragged": "split,label,a,b,c\ntrain,0,1,2,3\ntrain,1,1,2\n",
                "words": "train,zero,1,2\n", "field": "train,0,1," + "9" * 200_000 + "\n", "empty": "",
                "split": "train,0,1,2\nlater,1,1,2\n"}[name]
        path.write_text(text)
    elif name == "forged":
        _forged(path, ("sequences", "labels"))
    else:
        arrays = {"wrong": {"x": np.zeros(3)},
                  "classes": {"sequences": np.zeros((10, 3), int), "labels": np.zeros(10, int),
                              "num_classes": np.array(10**9)},
                  "width": {"sequences": np.zeros((10, 3), int), "labels": np.arange(10) % 2,
                            "input_width": np.array(99)},
                  "label": {"sequences": np.zeros((10, 3), int), "labels": np.arange(10) % 2 - 1}}[name]
        np.savez(path, **arrays)
    return path


def _sweep(tmp: Path, name: str) -> Path:
    folder = tmp / f"sweep-{name}"
    folder.mkdir(exist_ok=True)
    (folder / "plan.json").write_text("[1, 2]" if name == "list" else "{not json")
    return folder


def _resolve(arg: str, tmp: Path, case: str) -> str:
    def one(match):
        key = match[1]
        if key.startswith(("meta:", "state:")):
            return str(_tampered(tmp / "run" / "final.npz", tmp / f"{case}.npz", key))
        if key.startswith(("csv:", "npz:")):
            return str(_dataset(tmp, key))
        if key.startswith("sweep:"):
            return str(_sweep(tmp, key.split(":")[1]))
        named = {"tmp": tmp, "run": tmp / "run", "other": tmp / "other", "cut": tmp / "cut",
                 "ckpt": tmp / "run" / "final.npz", "reference": tmp / "text", "forged": tmp / "forged.npz",
                 "truncated": tmp / "truncated.npz", "text": tmp / "text", "pickled": tmp / "pickled.npz"}
        return str(named[key])

    return re.sub(r"\{([^{}]+(?:\{\})?)\}", one, arg)


@pytest.mark.parametrize(("category", "case", "argv", "code", "pattern"), CASES, ids=[c[1] for c in CASES])
def test_a_bad_input_gets_a_clear_error(files, monkeypatch, category, case, argv, code, pattern):
    if case == "memory-limit-env":
        monkeypatch.setenv("QRNN_MEMORY_LIMIT", "lots")
    protected = {p: p.read_bytes() for p in (files / "run").iterdir() if p.is_file()}
    result = CliRunner().invoke(main, [_resolve(a, files, case) for a in argv])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert re.search(pattern, " ".join(result.output.split())), result.output
    assert {p: p.read_bytes() for p in protected} == protected  # the run folder it may have pointed at: untouched
    assert not (files / "o").exists()  # no folder left by a run that could not start


def test_the_reliability_table_counts_these_cases():
    """docs/reliability.md's table says how many cases each category has: these."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    counts: dict[str, int] = {}
    for category, *_ in CASES:
        counts[category] = counts.get(category, 0) + 1
    for category, count in counts.items():
        assert re.search(rf"^\| {re.escape(category)} \| {count} \| {count} \|", text, re.MULTILINE), category
