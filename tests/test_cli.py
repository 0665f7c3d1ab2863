"""The qrnn command line, through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from qrnn_qiskit.cli import main


def test_build_report_json():
    result = CliRunner().invoke(main, ["build", "-I", "2", "-W", "3", "-S", "1", "-k", "2", "-d", "2", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
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

    from qrnn_qiskit._io import atomic_write_text

    path = atomic_write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(tmp_path.glob(".a.txt.*"))  # no temporary file left behind


def test_eval_limit_must_be_positive():
    from pathlib import Path

    checkpoint = str(Path(__file__).resolve().parents[1] / "benchmarks/runs/simple-bits-aer-spsa/best.npz")
    for backend in ("exact", "aer", "fake_manila"):
        r = CliRunner().invoke(main, ["eval", checkpoint, "--backend", backend, "--limit", "0"])
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
    assert len(rows) == 21
