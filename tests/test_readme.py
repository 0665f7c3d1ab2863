"""The README's Python example runs as written (its trainings shortened), and its Aer evaluation
keeps shots: the engine's pre-check lets it through and Aer's acceptance is near the engine's."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_python_example_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    block = text[text.index("## Python"):].split("```python")[1].split("```")[0]
    shorter = re.sub(r"steps=300", "steps=20", block)
    assert shorter != block and "steps=100" in shorter  # the simple-bits run keeps its 100 steps
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(shorter, "README.md", "exec"), scope)
    lines = printed.getvalue().split()
    acceptance = float(lines[-1])  # evaluate(..., backend="aer", shots=2000)["acceptance"]
    assert 0.2 < acceptance <= 1.0
    assert scope["report"]["targets"][0]["target"] == "fake_torino"
