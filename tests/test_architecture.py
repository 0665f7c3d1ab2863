"""The package's architecture rules hold (tools/check_layers.py), and the checker sees each kind of breach."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_the_package_keeps_every_rule(checker):
    assert checker.check(ROOT / "qrnn_qiskit") == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "qrnn_qiskit"
    for name, text in {"__init__.py": "", "core/__init__.py": "", "engine/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("files, breach", [
    ({"core/a.py": "from qrnn_qiskit.engine.b import X\n", "engine/b.py": "X = 1\n"}, "a layer above it"),
    ({"engine/a.py": "from qrnn_qiskit.engine.b import X\nY = 1\n", "engine/b.py": "from qrnn_qiskit.engine.a import Y\nX = 1\n"},
     "cycle: qrnn_qiskit.engine.a <-> qrnn_qiskit.engine.b"),
    ({"engine/a.py": "def f():\n    from qrnn_qiskit.engine.b import X\n", "engine/b.py": "X = 1\n"},
     "lazy import: qrnn_qiskit.engine.b inside a function"),
    ({"engine/a.py": "def f():\n    import numpy\n"}, "lazy import: numpy is no optional dependency"),
    ({"engine/a.py": "from qrnn_qiskit.engine.b import _x\n", "engine/b.py": "_x = 1\n"}, "private: qrnn_qiskit.engine.a imports"),
    ({"engine/a.py": "def f(engine):\n    return engine._plan\n"}, "private: qrnn_qiskit.engine.a reads engine._plan"),
    ({"engine/a.py": "X = 1\n" * 501}, "size: 501 lines"),
    ({"engine/a.py": "def f():\n" + "    x = 1\n" * 60}, "size: function f has 61 lines"),
    ({"nowhere/a.py": "X = 1\n", "nowhere/__init__.py": ""}, "belongs to no layer"),
])
def test_each_breach_is_reported(checker, tmp_path, files, breach):
    problems = checker.check(_package(tmp_path, files))
    assert any(breach in p for p in problems), problems


def test_optional_dependencies_may_be_imported_where_needed(checker, tmp_path):
    clean = {"engine/a.py": "def f():\n    import torch\n    from numba import cuda\n    return torch, cuda\n"}
    assert checker.check(_package(tmp_path, clean)) == []
