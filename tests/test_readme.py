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


def _commands(path: Path) -> list[list[str]]:
    """Every ``qrnn`` command line of ``path``'s bash blocks, continuation lines joined, comments
    dropped; lines that elide options with ``...`` are left out (they are not runnable as written)."""
    import shlex

    text = path.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            for part in re.split(r"&&|;", line.split(" # ")[0]):
                words = shlex.split(part.strip())
                if words[:1] == ["qrnn"] and "..." not in words:
                    commands.append(words[1:])
    return commands


@pytest.mark.parametrize(("path", "least"), [(README, 20), (README.parent / "docs" / "guide.md", 5)],
                         ids=["README", "guide"])
def test_every_documented_command_line_parses(path, least):
    """Each qrnn command of the bash blocks names real commands and options with values of the
    right type and choice, as click parses them (nothing runs: no files, no network)."""
    import click

    from qrnn_qiskit.cli import main

    commands = _commands(path)
    assert len(commands) >= least  # the blocks were found
    for args in commands:
        parent, command, name, rest = click.Context(main, info_name="qrnn"), main, "qrnn", list(args)
        while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
            name = rest.pop(0)
            found = command.get_command(parent, name)
            assert found is not None, f"qrnn has no command {name!r}: {args}"
            if isinstance(found, click.Group) and rest and not rest[0].startswith("-"):
                parent = click.Context(found, info_name=name, parent=parent)
            command = found
        try:
            command.make_context(name, rest, parent=parent)  # parses and checks; runs nothing
        except click.exceptions.Exit as exc:  # --help: printed, and nothing else to check
            assert exc.exit_code == 0
        except click.UsageError as exc:
            raise AssertionError(f"{' '.join(args)}: {exc.format_message()}") from None
