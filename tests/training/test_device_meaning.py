"""Training and evaluation under a device's meaning: measured don't-care steps, neurons that keep
every shot, noise given as rates or read from a fake backend (the density path)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.training.state import TrainState
from qrnn_qiskit.workflows.train import resume, train

# dna: one scored step at the end, I=3; with W=1 four lanes
DEVICE = dict(dataset="dna", sentence_length=6, workspace=1, stages=1, order=1, degree=1, batch_size=6,
              learning_rate=0.05, seed=3, steps=4, validate_every=2, neuron_mode="keep", unscored="measure",
              noise="neuron=0.02,readout=0.03")


def test_trains_under_the_device_meaning_and_resumes_exactly(tmp_path):
    settings = TrainSettings(**DEVICE)
    summary = train(settings, tmp_path / "whole", callbacks=[], test=True)
    first = train(settings.replace(steps=2), tmp_path / "piece", callbacks=[])
    assert first["steps"] == 2
    resume(tmp_path / "piece" / "final.npz", steps=4, callbacks=[])
    whole, piece = (load_checkpoint(tmp_path / d / "final.npz") for d in ("whole", "piece"))
    start = TrainState.initial(settings, settings.load_dataset()).parameters
    assert np.abs(whole.parameters - start).max() > 1e-3
    np.testing.assert_array_equal(piece.parameters, whole.parameters)
    assert whole.meta["noise"]["neuron"] == 0.02 and whole.meta["noise"]["readout1"] == 0.03
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["engine"]["backend"] == "density" and config["engine"]["unscored"] == "measure"
    # the test figures are the device meaning's, recomputed here from the best checkpoint
    best = load_checkpoint(tmp_path / "whole" / "best.npz")
    spec = EngineSpec("cpu", "float64", "keep", "measure", NoiseSpec(neuron=0.02, readout0=0.03, readout1=0.03))
    again = evaluate_exact(best.config, best.parameters, settings.load_dataset(), split="test", seed=3, engine=spec)
    assert summary["test_expected_accuracy"] == again["expected_accuracy"]
    assert summary["test_loss"] == again["loss"] and summary["test_noise"]["neuron"] == 0.02


def test_device_figures_by_hand():
    # one scored step, the last: the expected accuracy is the mean probability of the target at it
    # when every step is measured, the decided accuracy whether the target is the most likely outcome
    dataset = get_dataset("dna", sentence_length=6)
    settings = TrainSettings(**DEVICE)
    state = TrainState.initial(settings, dataset)
    params = state.config.initial_parameters(bias_spread=1.0, weights_spread=1.0, unitaries_spread=1.0, seed=4)
    batch = dataset.split("test").first(12)
    inputs, targets = batch.engine_arrays()
    spec = EngineSpec("numpy", "float64", "postselect", "measure", NoiseSpec(neuron=0.05, readout0=0.02, readout1=0.04))
    probs = ExactEngine(state.config, spec).simulate(params, inputs, targets, measure=[True] * inputs.shape[1])
    last = probs.probabilities[:, -1]
    picked = last[np.arange(len(last)), targets[:, -1]]
    figures = evaluate_exact(state.config, params, dataset, batch=batch, engine=spec)
    assert figures["expected_accuracy"] == pytest.approx(picked.mean(), abs=1e-14)
    assert figures["decided_accuracy"] == pytest.approx((last.argmax(axis=1) == targets[:, -1]).mean(), abs=1e-14)
    acceptance = probs.neuron_acceptance.prod(axis=1)
    assert figures["log10_expected_acceptance"] == pytest.approx(np.log10(acceptance.mean()), abs=1e-12)
    assert acceptance.mean() < 0.01  # postselected neurons discard shots: every step of every sequence


def test_noise_read_from_a_fake_backend_once(tmp_path, monkeypatch):
    settings = TrainSettings(**{**DEVICE, "noise": "fake_torino", "steps": 2})
    summary = train(settings, tmp_path / "run", callbacks=[])
    ck = load_checkpoint(tmp_path / "run" / "final.npz")
    assert ck.meta["settings"]["noise"] == "fake_torino"
    assert ck.meta["noise"]["source"].startswith("fake_torino: ") and ck.meta["noise"]["neuron"] > 0
    assert summary["steps"] == 2

    def fail(*args, **kwargs):
        raise AssertionError("a resumed run must keep the noise it trained under, not read the backend again")

    monkeypatch.setattr("qrnn_qiskit.circuits.noise.noise_from_backend", fail)
    resume(tmp_path / "run" / "final.npz", steps=3, callbacks=[])
    assert load_checkpoint(tmp_path / "run" / "final.npz").meta["noise"] == ck.meta["noise"]


def test_a_new_noise_on_resume_restarts_the_best_loss(tmp_path):
    settings = TrainSettings(**{**DEVICE, "steps": 2})
    train(settings, tmp_path / "run", callbacks=[])
    ck = load_checkpoint(tmp_path / "run" / "final.npz")
    state = TrainState.from_checkpoint(ck, settings.replace(noise="none"), settings.load_dataset())
    assert state.noise is None and state.best == float("inf")
    same = TrainState.from_checkpoint(ck, settings, settings.load_dataset())
    assert same.best == ck.meta["best_validation_loss"]


def test_the_command_line_options(tmp_path):
    from click.testing import CliRunner

    from qrnn_qiskit.cli import main

    args = ["train", "--dataset", "dna", "--sentence-length", "6", "-W", "1", "-S", "1", "-k", "1", "--degree", "1",
            "--batch-size", "4", "--steps", "2", "--validate-every", "2", "--neuron-mode", "keep", "--unscored",
            "measure", "--noise", "neuron=0.01,readout=0.02", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "meaning: neurons keep, don't-care steps measured, noise neuron=0.01" in result.output
    assert "4**(I+W) = 4**4 numbers" in result.output
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "run" / "best.npz"), "--unscored", "measure", "--noise",
                                       "neuron=0.01,readout=0.02", "--neuron-mode", "keep", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["unscored"] == "measure" and figures["noise"]["readout0"] == 0.02
    assert figures["log10_expected_acceptance"] == pytest.approx(0.0, abs=1e-12)  # keep: every shot
    result = CliRunner().invoke(main, [*args[:-2], "--noise", "depolarizing", "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "noise rates look like neuron=0.01" in result.output


@pytest.mark.slow
def test_two_workers_equal_one_process_under_the_device_meaning(tmp_path):
    pytest.importorskip("ray")
    settings = TrainSettings(**DEVICE)
    train(settings, tmp_path / "one", callbacks=[])
    train(settings.replace(workers=2), tmp_path / "two", callbacks=[])
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "two" / "final.npz").parameters,
                                  load_checkpoint(tmp_path / "one" / "final.npz").parameters)


def test_a_sweep_carries_the_meaning(tmp_path):
    from qrnn_qiskit.workflows.sweep import sweep

    settings = TrainSettings(**{**DEVICE, "steps": 2, "noise": None, "neuron_mode": "postselect",
                                "unscored": "postselect"})
    sweep(settings, tmp_path, grid=["unscored=postselect,measure", "noise=none,neuron=0.05"])
    trials = sorted(p.parent.name for p in tmp_path.glob("*/final.npz"))
    assert len(trials) == 4
    for trial in trials:
        meta = load_checkpoint(tmp_path / trial / "final.npz").meta
        assert meta["settings"]["unscored"] in trial and (meta["noise"] is None) == ("noise-None" in trial)
        if meta["noise"] is not None:
            assert meta["noise"]["neuron"] == 0.05
