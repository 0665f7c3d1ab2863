"""The qrnn command line, through click's CliRunner."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main


def test_build_report_json():
    result = CliRunner().invoke(main, ["build", "-I", "2", "-W", "3", "-S", "1", "-k", "2", "-d", "2", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    # 1 step, 3 + 3 + 2 = 8 neurons x 3 ancilla measurements + 2 io measurements
    assert info["logical"]["measurements"] == 8 * 3 + 2
    assert info["logical"]["qubits"] == 2 + 3 + 2
    assert info["num_parameters"] == 8 * (1 + 4 + 6) + 3
    assert info["targets"] == [] and "expected_acceptance" not in info


def test_build_text_report_and_export(tmp_path):
    out = tmp_path / "cell.qasm"
    result = CliRunner().invoke(main, ["build", "-W", "2", "-T", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "measurements" in result.output and f"wrote qasm3 to {out}" in result.output
    assert out.read_text().startswith("OPENQASM 3.0;")
    assert json.loads((tmp_path / "cell.qasm.json").read_text())["qrnn"]["length"] == 2


def test_build_draw():
    result = CliRunner().invoke(main, ["build", "-I", "1", "-W", "1", "-S", "0", "-k", "1", "-d", "1", "--draw", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "io" in result.output and "anc" in result.output


def test_build_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["build", "-W", "0"])
    assert result.exit_code == 2 and "workspace must be >= 1, got 0" in result.output
    result = runner.invoke(main, ["build", "-d", "9"])
    assert result.exit_code == 2 and "degree must be at most" in result.output
    result = runner.invoke(main, ["build", "-T", "0"])
    assert result.exit_code == 2 and "length must be >= 1" in result.output
    result = runner.invoke(main, ["build", "-o", str(tmp_path / "a.qasm"), "--format", "qasm2"])
    assert result.exit_code == 2 and "OpenQASM 2 cannot declare free parameters" in result.output
    result = runner.invoke(main, ["build", "--format", "qasm4"])
    assert result.exit_code == 2 and "qasm4" in result.output


def test_exports_get_ordinary_permissions(tmp_path):
    import os

    from qrnn_qiskit.core.io import atomic_write_text

    path = atomic_write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(tmp_path.glob(".a.txt.*"))  # no temporary file left behind


def test_eval_limit_must_be_positive(small_checkpoint):
    for backend in ("exact", "aer", "fake_manila"):
        r = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--backend", backend, "--limit", "0"])
        assert r.exit_code == 2 and "limit must be >= 1 sequences, got 0" in r.output, (backend, r.output)


def test_datasets_lists_every_entry_without_a_data_dir():
    """No --data-dir: generated sets are described, file-based ones say what they need."""
    result = CliRunner().invoke(main, ["datasets"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert rows["simple-seq"].split()[1:] == ["3", "20", "0", "19"]
    assert rows["digits01"].split()[1:] == ["2", "64", "2", "1"]
    assert "needs --data-dir with the reference csv.gz files" in rows["mnist01"]
    assert "needs --data-dir with the MNIST IDX files" in rows["mnist01-idx"]
    # the parametrised families are shown through one instance each, with their pattern
    assert "[mnist-umap-dD-rR:" in rows["mnist-umap-d3-r5"] and "[mnist-pca-rR-pP:" in rows["mnist-pca-r3-p8"]
    assert "[mnist-tsne-dD-rR:" in rows["mnist-tsne-d2-r5"]
    assert "[mnistAB-pca-rR-pP:" in rows["mnist01-pca-r1-p4"] and "[mnistAB-umap-dD-rR:" in rows["mnist01-umap-d2-r4"]
    assert len(rows) == 24


def _commands():
    return {name: command for name, command in main.commands.items()}


def test_every_option_has_help_text():
    for name, command in _commands().items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help and param.help.strip(), f"qrnn {name} {param.opts[0]} has no help text"


def test_short_flags_mean_the_same_option_everywhere():
    meaning: dict[str, tuple[str, str]] = {}
    for name, command in _commands().items():
        for param in command.params:
            for flag in param.opts + param.secondary_opts:
                if len(flag) == 2 and flag.startswith("-"):
                    long = next(o for o in param.opts if o.startswith("--"))
                    first = meaning.setdefault(flag, (long, name))
                    assert first[0] == long, f"{flag} is {long} on qrnn {name} but {first[0]} on qrnn {first[1]}"
    # the model's sizes have the same short flags on build and train
    for flag in ("-W", "-S", "-k", "-d"):
        assert {n for n, c in _commands().items() if any(flag in p.opts for p in c.params)} >= {"build", "train"}


@pytest.mark.parametrize(("command", "function"), [
    ("build", "qrnn_qiskit.workflows.build:build"),
    ("eval", "qrnn_qiskit.workflows.evaluate:evaluate"),
    ("train", "qrnn_qiskit.workflows.train:train"),
    ("resume", "qrnn_qiskit.workflows.train:resume"),
    ("import-reference", "qrnn_qiskit.models.reference:import_reference"),
])
def test_commands_take_the_library_parameters_and_defaults(command, function):
    """Every option of a command is a parameter of its library function (or of TrainSettings),
    with the same default; printing options (--json, --report, --draw) are the command's own."""
    import importlib
    import inspect

    from qrnn_qiskit import TrainSettings

    module, name = function.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    settings = {name: f.default for name, (_, f) in TrainSettings.options().items()}
    ctx = click.Context(main.commands[command])
    for param in main.commands[command].params:
        if param.name in ("as_json", "report", "draw", "checkpoint", "file", "run_dir"):
            continue
        given = param.get_default(ctx)
        given = None if repr(given) == "Sentinel.UNSET" else given  # click >= 8.3: no default given
        if param.name in signature:
            default = signature[param.name].default
            assert default is not inspect.Parameter.empty, (command, param.name)
            assert given == default or (given in (None, ()) and default in (None, ())), (command, param.name, given, default)
        elif param.name == "recipe":  # qrnn train --recipe NAME: recipe_settings(recipe, ...)
            from qrnn_qiskit.training.recipes import recipe_settings

            assert command == "train" and "recipe" in inspect.signature(recipe_settings).parameters and given is None
        elif param.name == "config":  # qrnn train --config FILE: TrainSettings.from_config(config, ...)
            assert command == "train" and "config" in inspect.signature(TrainSettings.from_config).parameters
            assert given is None
        else:
            assert command == "train" and param.name in settings, f"qrnn {command} --{param.name} is no parameter"
            assert given == settings[param.name], (param.name, given, settings[param.name])


def test_fixed_bias_keeps_the_reference_spelling(tmp_path):
    from qrnn_qiskit.models.checkpoint import load_checkpoint

    args = ["train", "-W", "1", "-S", "0", "-k", "1", "-d", "1", "--sentence-length", "3", "--steps", "1"]
    for flag in ("--bias", "--initial-bias"):
        out = tmp_path / flag.strip("-")
        result = CliRunner().invoke(main, [*args, flag, "1.2", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert load_checkpoint(out / "final.npz").config.bias == 1.2
