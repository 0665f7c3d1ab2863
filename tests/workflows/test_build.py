"""qrnn build: bound builds, acceptance against the gate-level reference, target reports, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.targets import resolve_target, transpile_report
from qrnn_qiskit.cli import main
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint
from qrnn_qiskit.workflows.build import build_circuits as build

CFG = QRNNConfig(input_width=3, workspace=2, stages=1, order=2, degree=1)


def _checkpoint(tmp_path):
    params = CFG.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=3)
    return save_checkpoint(tmp_path / "m.npz", Checkpoint(CFG, params, {"dataset": "simple-seq"})), params


def test_acceptance_equals_the_gate_level_postselection(tmp_path):
    path, params = _checkpoint(tmp_path)
    result = CliRunner().invoke(
        main, ["build", "--checkpoint", str(path), "--dataset", "simple-seq", "--sample", "0", "--json", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["length"] == 19 and report["logical"]["parameters"] == 0
    # independent: evolve the bound circuit gate by gate and project every measurement
    seq = np.array([t % 4 for t in range(20)])
    bits = CFG.token_to_bits(seq[:-1]).reshape(-1).astype(float)
    reference = run_postselected(qrnn_sequence(CFG, 19, weights=params, inputs=bits), list(seq[1:]), 3)
    acc = report["expected_acceptance"]
    assert acc["log10_ancillas"] == pytest.approx(np.log10(reference.neuron_acceptance).sum(), abs=1e-9)
    joint = np.log10(reference.neuron_acceptance * reference.outcome_probability).sum()
    assert acc["log10_ancillas_and_targets"] == pytest.approx(joint, abs=1e-9)
    assert acc["ancillas_per_step"] == pytest.approx(10 ** (acc["log10_ancillas"] / 19), rel=1e-9)


def test_generic_report_scales_one_step_exactly():
    step = qrnn_sequence(CFG, 1)
    one = transpile_report(step, "generic", length=1)
    three = transpile_report(step, "generic", length=3)
    assert three["two_qubit_gates"] == 3 * one["two_qubit_gates"] > 0
    # transpiling the 3-step circuit as a whole gives exactly 3x the 2-qubit gates on the generic basis
    whole = transpile_report(qrnn_sequence(CFG, 3), "generic", length=1)
    assert whole["two_qubit_gates"] == three["two_qubit_gates"]
    assert whole["depth"] <= three["depth"]  # per-step scaling is an upper bound on depth


def test_fake_backend_report():
    report = transpile_report(qrnn_sequence(CFG, 1), "fake_torino", length=2)
    assert report["target"] == "fake_torino" and report["operations"].get("cz", 0) == report["two_qubit_gates"]
    assert len(report["layout"]) == CFG.num_qubits and len(set(report["layout"])) == CFG.num_qubits
    assert 0 < report["success_probability_estimate"] < report["success_probability_estimate_per_step"] < 1
    assert report["success_probability_estimate"] == pytest.approx(report["success_probability_estimate_per_step"] ** 2)
    assert report["duration_seconds"] > 0


def test_layouts_on_a_device():
    from qrnn_qiskit.circuits.targets import compact_layouts

    cfg = QRNNConfig(input_width=2, workspace=4, stages=1, order=2, degree=2)
    step = qrnn_sequence(cfg, 1)
    default = transpile_report(step, "fake_torino", layout="default")
    compact = transpile_report(step, "fake_torino", layout="compact")
    auto = transpile_report(step, "fake_torino")
    # auto keeps the better of the pass manager's layout and the compact candidates
    assert auto["two_qubit_gates_per_step"] == min(default["two_qubit_gates_per_step"], compact["two_qubit_gates_per_step"])
    assert auto["two_qubit_gates_per_step_default_layout"] == default["two_qubit_gates_per_step"]
    assert default["layout_strategy"] == "default" and compact["layout_strategy"] == "compact"
    # routing overhead is measured against the same circuit on an all-to-all device
    assert auto["swap_overhead_two_qubit_gates_per_step"] == (
        auto["two_qubit_gates_per_step"] - auto["two_qubit_gates_per_step_all_to_all"]
    ) >= 0
    backend = resolve_target("fake_torino").backend
    edges = {frozenset(e) for e in backend.coupling_map.get_edges()}
    for layout in compact_layouts(backend, step, count=3):
        assert len(set(layout)) == step.num_qubits
        # the ancillas (the neurons' hubs) sit next to each other on the device
        assert frozenset(layout[-2:]) in edges
    with pytest.raises(ValueError, match="Unknown layout 'dense'; expected one of auto, default, compact"):
        transpile_report(step, "fake_torino", layout="dense")


@pytest.mark.slow
def test_report_compares_strategies_side_by_side():
    cfg = QRNNConfig(input_width=3, workspace=5, stages=1, order=2, degree=3)  # 7 sources, degree 3
    result = build(cfg, targets=("generic",))
    syn = result.report["synthesis"]
    assert syn["neuron_shapes"] == [
        {"sources": 7, "degree": 3, "neurons": 13, "chosen": "phase-polynomial",
         "block_cnots": {"mc": 882, "multiplexer": 128, "phase-polynomial": 84}}
    ]
    table = syn["compare"]["two_qubit_gates_per_step"]
    assert table["phase-polynomial"]["generic"] == result.report["targets"][0]["two_qubit_gates_per_step"]
    assert table["phase-polynomial"]["generic"] < table["multiplexer"]["generic"] < table["mc"]["generic"]
    r = CliRunner().invoke(main, ["build", "-I", "3", "-W", "5", "-d", "3", "--synthesis", "mc", "--no-compare", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["synthesis"]["neuron_shapes"][0]["chosen"] == "mc" and "compare" not in report["synthesis"]
    assert report["logical"]["controlled_rotations"]["3"] > 0
    r = CliRunner().invoke(main, ["build", "--synthesis", "gray"])
    assert r.exit_code == 2 and "'gray' is not one of 'mc', 'multiplexer', 'phase-polynomial', 'ucgate', 'diagonal', 'auto'" in r.output


def test_rus_on_a_static_backend_is_refused():
    step = qrnn_sequence(CFG, 1, neuron_mode="rus:1")
    with pytest.raises(ValueError, match=r"fake_athens does not support \['if_else'\].*neuron_mode 'postselect'"):
        transpile_report(step, "fake_athens")
    assert transpile_report(step, "fake_torino")["two_qubit_gates"] > 0


class TestErrors:
    @pytest.mark.parametrize(
        ("name", "match"),
        [
            ("fake_nowhere", r"Unknown fake backend 'fake_nowhere'.*fake_torino"),
            ("ibm_torino", r"live IBM backend.*fake backend such as fake_torino"),
            ("quantinuum", r"Unknown target 'quantinuum'; expected 'generic', 'fake_<name>'"),
        ],
    )
    def test_targets(self, name, match):
        with pytest.raises(ValueError, match=match):
            resolve_target(name)

    def test_optimization_level(self):
        with pytest.raises(ValueError, match="optimization_level must be 0, 1, 2 or 3, got 5"):
            transpile_report(qrnn_sequence(CFG, 1), "generic", optimization_level=5)

    def test_too_wide_for_the_backend(self):
        wide = QRNNConfig(input_width=2, workspace=3, stages=0, order=2, degree=1)  # 7 qubits
        with pytest.raises(ValueError, match="needs 7 qubits but fake_athens has 5"):
            transpile_report(qrnn_sequence(wide, 1), "fake_athens")

    def test_length_must_match_the_sample(self):
        seq = np.array([0, 1, 2])
        with pytest.raises(ValueError, match="length 5 does not match the sample, which has 3 steps"):
            build(CFG, length=5, sample=(seq, seq, np.ones(3, bool)))

    def test_cli_option_errors(self, tmp_path):
        runner = CliRunner()
        path, _ = _checkpoint(tmp_path)
        r = runner.invoke(main, ["build", "--dataset", "simple-seq"])
        assert r.exit_code == 2 and "dataset binds one sequence's inputs: give sample (--sample) too" in r.output
        r = runner.invoke(main, ["build", "--checkpoint", str(path), "--dataset", "simple-seq", "--sample", "7"])
        assert r.exit_code == 2 and "sample must be in [0, 2) for the test split, got 7" in r.output
        r = runner.invoke(main, ["build", "-I", "2", "--dataset", "simple-seq", "--sample", "0"])
        assert r.exit_code == 2 and "3-bit tokens but the model has --input-width 2." in r.output
        r = runner.invoke(main, ["build", "-I", "1", "-W", "2", "-S", "1", "-k", "1", "-d", "1", "--neuron-mode", "rus:1",
                                 "-o", str(tmp_path / "x.qasm"), "--format", "qasm2"])
        assert r.exit_code == 2 and "export it with --format qasm3." in r.output  # the flag, not fmt='qasm3'
        r = runner.invoke(main, ["build", "--neuron-mode", "rus:0"])
        assert r.exit_code == 2 and "at least one retry" in r.output
        r = runner.invoke(main, ["build", "--target", "fake_nowhere"])
        assert r.exit_code == 2 and "Unknown fake backend" in r.output
        r = runner.invoke(main, ["build", "--checkpoint", str(tmp_path / "none.npz")])
        assert r.exit_code == 1 and "No checkpoint at" in r.output

    def test_qasm2_names_the_control_flow(self, tmp_path):
        path, _ = _checkpoint(tmp_path)
        r = CliRunner().invoke(
            main,
            ["build", "--checkpoint", str(path), "--dataset", "simple-seq", "--sample", "1", "--length", "19",
             "--neuron-mode", "rus:1", "-o", str(tmp_path / "a.qasm"), "--format", "qasm2"],
        )
        assert r.exit_code == 2 and "OpenQASM 2 cannot express control flow, and this circuit contains ['if_else']" in r.output
        assert not (tmp_path / "a.qasm").exists()


@pytest.mark.slow
def test_text_report_with_targets(tmp_path):
    path, _ = _checkpoint(tmp_path)
    r = CliRunner().invoke(
        main,
        ["build", "--checkpoint", str(path), "--dataset", "simple-seq", "--sample", "0", "--target", "generic",
         "--target", "fake_torino", "--neuron-mode", "rus:2"],
    )
    assert r.exit_code == 0, r.output
    for text in ("neuron mode rus:2", "target generic", "target fake_torino", "success estimate", "lower bound for rus",
                 "routing overhead", "2-qubit gates per step", "block synthesis    auto"):
        assert text in r.output



def test_duration_matches_qiskit_on_static_circuits():
    from qiskit.transpiler import generate_preset_pass_manager

    from qrnn_qiskit.circuits.targets import _duration

    backend = resolve_target("fake_torino").backend
    compiled = generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=7).run(qrnn_sequence(CFG, 1))
    assert _duration(compiled, backend) == pytest.approx(compiled.estimate_duration(backend.target, unit="s"), rel=1e-9)


def test_build_from_a_checkpoint_takes_its_dataset_and_trained_length(tmp_path):
    """A simple-bits model trained on sentences of 3 tokens (2 cell steps): ``build --checkpoint
    --sample 0`` binds a test sequence of the dataset it was trained on at that length (before,
    the dataset's default of 8 tokens: 7 steps), and its expected acceptance is the one the exact
    evaluation gives that sequence."""
    from qrnn_qiskit.data.base import SequenceBatch
    from qrnn_qiskit.evaluation.exact import evaluate_exact
    from qrnn_qiskit.models.checkpoint import load_checkpoint
    from qrnn_qiskit.training.settings import TrainSettings
    from qrnn_qiskit.workflows.build import build as build_model
    from qrnn_qiskit.workflows.train import train

    settings = TrainSettings(dataset="simple-bits", sentence_length=3, workspace=2, stages=1, order=1, degree=1,
                             steps=5, validate_every=5, seed=2)
    train(settings, tmp_path / "run", callbacks=[])
    path = tmp_path / "run" / "best.npz"
    result = build_model(path, sample=0, compare=False)
    assert result.circuit.metadata["qrnn"]["length"] == 2
    ck = load_checkpoint(path)
    dataset = settings.load_dataset()
    test = dataset.split("test")
    one = SequenceBatch(test.inputs[:1], test.targets[:1], test.labels[:1])
    exact = evaluate_exact(ck.config, ck.parameters, dataset, batch=one)
    assert result.report["expected_acceptance"]["log10_ancillas"] == pytest.approx(
        exact["log10_expected_acceptance"], abs=1e-9)
    assert exact["log10_expected_acceptance"] < -0.01  # an acceptance to compare
    with pytest.raises(ValueError, match="sample needs the dataset it indexes"):
        build_model(None, sample=0)


def test_build_takes_a_backend_a_target_and_a_pass_manager():
    """The same step compiled for fake_torino by name, as its BackendV2, as its Target and with
    a PassManager of our own gives the same two-qubit count at one layout and seed; a Target
    compiles but does not run."""
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    from qrnn_qiskit.circuits.targets import TargetBackend
    from qrnn_qiskit.workflows.build import build as build_model

    backend = FakeTorino()
    manager = generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=7)
    options = dict(input_width=1, workspace=2, stages=1, order=1, degree=1, compare=False, layout="default")
    by_name, by_backend, by_target = (build_model(targets=(t,), **options).report["targets"][0]
                                      for t in ("fake_torino", backend, backend.target))
    custom = build_model(targets=("fake_torino",), pass_manager=manager, **options).report["targets"][0]
    counts = {r["two_qubit_gates_per_step"] for r in (by_name, by_backend, by_target, custom)}
    assert len(counts) == 1 and counts.pop() > 0
    assert custom["layout_strategy"] == "custom" and "success_probability_estimate" in by_target
    with pytest.raises(NotImplementedError, match="A Target only compiles"):
        TargetBackend(backend.target).run(None)


def test_build_shows_its_phases_and_refuses_an_oversized_acceptance_at_once(monkeypatch):
    """Progress on standard error, one line a phase (the JSON on standard output stays clean), and
    a model whose acceptance the engine cannot hold refused before any circuit is built."""
    import time

    result = CliRunner().invoke(main, ["build", "-I", "2", "-W", "3", "-S", "1", "-k", "2", "-d", "2", "--target",
                                       "generic", "--json"])
    assert result.exit_code == 0, result.output
    phases = [line for line in result.stderr.splitlines() if line.startswith("build: ")]
    assert phases[:4] == ["build: building the 1-step circuit's cell step (7 qubits) ...", "build: logical figures ...",
                          "build: transpiling one step for generic ...", "build: comparing the synthesis strategies ..."]
    assert json.loads(result.stdout)["logical"]["qubits"] == 7
    monkeypatch.setenv("QRNN_MEMORY_LIMIT", "64M")
    started = time.monotonic()
    refused = CliRunner().invoke(main, ["build", "-I", "3", "-W", "12", "-S", "1", "-k", "1", "-d", "1", "--dataset",
                                        "simple-seq", "--sample", "0"])
    assert refused.exit_code == 1 and "I+W = 15 lanes, more than the 64.0 MiB allowed" in refused.output
    assert "Lower the model (--input-width, --workspace)" in refused.output and "build: building" not in refused.output
    assert time.monotonic() - started < 5
