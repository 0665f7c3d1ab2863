"""qrnn train and resume: resume is exact, run folders are complete, stop conditions hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.callbacks import Callback
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.train import resume, train

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2, learning_rate=0.05, seed=5)


def test_lbfgs_resume_is_exact(tmp_path):
    settings = dict(SMALL, optimizer="lbfgs", learning_rate=0.5)
    train(TrainSettings(**settings, steps=6, validate_every=3), tmp_path / "a")
    train(TrainSettings(**settings, steps=3, validate_every=3), tmp_path / "b")
    resume(tmp_path / "b" / "final.npz", steps=6)
    np.testing.assert_allclose(
        np.load(tmp_path / "a" / "final.npz")["parameters"], np.load(tmp_path / "b" / "final.npz")["parameters"], atol=1e-12
    )


def test_resume_continues_the_identical_trajectory(tmp_path):
    straight = train(TrainSettings(**SMALL, steps=40, validate_every=10), tmp_path / "a")
    first = train(TrainSettings(**SMALL, steps=20, validate_every=10), tmp_path / "b")
    assert first["steps"] == 20
    resumed = resume(tmp_path / "b" / "final.npz", steps=40)
    assert resumed["steps"] == 40
    a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == [r["step"] for r in a] == [10, 20, 30, 40]
    assert resumed["best_validation_loss"] == pytest.approx(straight["best_validation_loss"], abs=1e-12)
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-12)
        assert x["validation_loss"] == pytest.approx(y["validation_loss"], abs=1e-12)
    np.testing.assert_allclose(
        np.load(tmp_path / "a" / "final.npz")["parameters"], np.load(tmp_path / "b" / "final.npz")["parameters"], atol=1e-12
    )


def test_run_folder_and_cli_json(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1", "--degree", "1", "--sentence-length", "5", "--steps", "10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["steps"] == 10 and summary["best_validation_loss"] < 1
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["dataset"] == "simple-seq" and config["settings"]["steps"] == 10
    assert config["model"]["workspace"] == 2 and isinstance(config["settings"]["argv"], list)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert set(record) >= {"step", "loss", "validation_loss", "character_error_rate", "min_postselection_probability", "seconds"}
    evaluated = CliRunner().invoke(main, ["eval", str(out / "best.npz"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0 <= json.loads(evaluated.stdout)["accuracy"] <= 1


def test_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs2'"):
        train(TrainSettings(**{**SMALL, "optimizer": "lbfgs2"}), tmp_path)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        train(TrainSettings(**SMALL, steps=0), tmp_path)
    result = CliRunner().invoke(main, ["train", "--backend", "ibm_torino", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "ibm_torino" in result.output
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "missing.npz")])
    assert result.exit_code == 1 and "No checkpoint at" in result.output


def test_import_reference_cli(shared_dir, tmp_path):
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(main, ["import-reference", str(shared_dir / "reference/checkpoints/mnist01-reference.npz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "I=2 W=8 S=2 order=2 degree=2, 1212 parameters" in result.output
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(main, ["import-reference", str(bad)])
    assert result.exit_code == 1 and "is not a reference state dict: a reference state dict is an .npz archive" in result.output


def test_plot_and_test_flag(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "dna", "--sentence-length", "6", "-W", "2", "-S", "1", "--order", "1", "--degree", "1", "--batch-size", "4", "--steps", "20", "--out", str(out), "--test", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["test_sequences"] == 1024 and 0 <= summary["test_accuracy"] <= 1
    plotted = CliRunner().invoke(main, ["plot", str(out)])
    assert plotted.exit_code == 0, plotted.output
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert missing.exit_code == 1 and "No metrics.jsonl" in missing.output


def test_missing_optional_dependency_message(monkeypatch):
    from qrnn_qiskit.core import optionals

    monkeypatch.setattr(optionals, "available", lambda module: False)
    with pytest.raises(optionals.MissingOptionalDependency, match=r"pip install 'qrnn-qiskit\[digits\]'"):
        optionals.require("sklearn", "the digits datasets")


def test_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    train(TrainSettings(**SMALL, steps=20, tensorboard=True), tmp_path)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"loss", "validation_loss", "character_error_rate", "min_postselection_probability"} <= set(events.Tags()["scalars"])
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    values = events.Scalars("validation_loss")
    assert [v.step for v in values] == [r["step"] for r in metrics] == [10, 20]
    np.testing.assert_allclose([v.value for v in values], [r["validation_loss"] for r in metrics], rtol=1e-6)


def test_train_on_aer_with_spsa(tmp_path):
    out = tmp_path / "aer"
    result = CliRunner().invoke(main, [
        "train", "--backend", "aer", "--gradient", "spsa", "--shots", "400", "--dataset", "simple-seq",
        "--sentence-length", "2", "-W", "1", "-S", "0", "--order", "1", "--degree", "1", "--batch-size", "2",
        "--steps", "4", "--validate-every", "2", "--out", str(out), "--json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["backend"] == "aer" and summary["steps"] == 4
    assert "aer spsa: 4 circuit rows x 400 shots" in result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_fixed_validation_set(tmp_path):
    """--validation-size picks the best checkpoint on fixed sequences and never moves training."""
    from qrnn_qiskit.data.registry import get_dataset
    from qrnn_qiskit.evaluation.exact import evaluate_exact
    from qrnn_qiskit.models.checkpoint import load_checkpoint
    from qrnn_qiskit.training.loop import fixed_validation_set as _fixed_validation_set

    base = dict(dataset="digits01", workspace=2, stages=1, order=1, degree=1, batch_size=2, learning_rate=0.05,
                seed=3, steps=4, validate_every=2)
    runs = {}
    for name, size in (("random", None), ("fixed", 10), ("whole", 0)):
        train(TrainSettings(**base, validation_size=size), tmp_path / name)
        runs[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    for name in ("fixed", "whole"):
        assert [r["loss"] for r in runs[name]] == pytest.approx([r["loss"] for r in runs["random"]], abs=1e-12)
    dataset = get_dataset("digits01")
    final = load_checkpoint(tmp_path / "whole" / "final.npz")
    whole = evaluate_exact(final.config, final.parameters, dataset, split="validate")
    assert whole["sequences"] == 72
    assert runs["whole"][-1]["validation_loss"] == pytest.approx(whole["loss"], abs=1e-12)
    subset = _fixed_validation_set(dataset, TrainSettings(**base, validation_size=10))
    assert subset.inputs.shape[0] == 10
    fixed = evaluate_exact(final.config, final.parameters, dataset, batch=subset)
    assert runs["fixed"][-1]["validation_loss"] == pytest.approx(fixed["loss"], abs=1e-12)
    assert fixed["loss"] != pytest.approx(whole["loss"], abs=1e-9)

    # switching a run to the whole split on resume forgets the best loss of the random batches
    summary = resume(tmp_path / "random" / "final.npz", tmp_path / "switched", steps=6, validation_size=0)
    config = json.loads((tmp_path / "switched" / "config.json").read_text())  # a new folder gets its config
    assert config["settings"]["validation_size"] == 0 and config["resumed_from"]["step"] == 4
    assert config["resumed_from"]["settings"]["validation_size"] is None
    switched = [json.loads(line) for line in (tmp_path / "switched" / "metrics.jsonl").read_text().splitlines()]
    # a new folder starts with the run's history up to the resumed step, then goes on
    assert [r["step"] for r in switched] == [2, 4, 6] and switched[:2] == runs["random"]
    assert summary["best_validation_loss"] == pytest.approx(switched[-1]["validation_loss"], abs=1e-15)
    with pytest.raises(ValueError, match="validation_size must be 0"):
        train(TrainSettings(**base, validation_size=-1), tmp_path / "bad")


def test_lr_schedule_equals_a_resume_with_a_new_rate(tmp_path):
    """--lr-schedule 20:0.01 is the same trajectory as stopping at step 20 and resuming at 0.01."""
    scheduled = train(TrainSettings(**SMALL, steps=40, validate_every=10, lr_schedule=[[20, 0.01]]), tmp_path / "s")
    train(TrainSettings(**SMALL, steps=20, validate_every=10), tmp_path / "r")
    resumed = resume(tmp_path / "r" / "final.npz", steps=40, learning_rate=0.01)
    a = [json.loads(line) for line in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], abs=1e-12)
    assert scheduled["best_validation_loss"] == pytest.approx(resumed["best_validation_loss"], abs=1e-12)
    np.testing.assert_allclose(
        np.load(tmp_path / "s" / "final.npz")["parameters"], np.load(tmp_path / "r" / "final.npz")["parameters"], atol=1e-12
    )
    constant = train(TrainSettings(**SMALL, steps=40, validate_every=10), tmp_path / "c")
    assert constant["final_loss"] != pytest.approx(scheduled["final_loss"], abs=1e-9)

    # the command line form, and its errors
    out = tmp_path / "cli"
    args = ["train", "-W", "2", "-S", "1", "--order", "1", "--sentence-length", "5", "--steps", "4", "--out", str(out)]
    result = CliRunner().invoke(main, args + ["--lr-schedule", "2:0.01,3:0.001"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["settings"]["lr_schedule"] == [[2, 0.01], [3, 0.001]]
    result = CliRunner().invoke(main, args + ["--lr-schedule", "2-0.01"])
    assert result.exit_code == 2 and "STEP:LR" in result.output
    with pytest.raises(ValueError, match="increasing steps >= 1"):
        train(TrainSettings(**SMALL, lr_schedule=[[20, 0.01], [10, 0.001]]), tmp_path / "bad")


class _InterruptAt(Callback):
    """Raises KeyboardInterrupt after step ``at`` (as Ctrl-C would, between two steps)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step(self, state) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt


class TestStopConditions:
    def test_ctrl_c_leaves_a_resumable_final_checkpoint(self, tmp_path):
        straight = train(TrainSettings(**SMALL, steps=12, validate_every=4), tmp_path / "a", callbacks=[])
        cut = train(TrainSettings(**SMALL, steps=12, validate_every=4), tmp_path / "b", callbacks=[_InterruptAt(6)])
        assert cut["stopped"] == "interrupted" and cut["steps"] == 6
        assert load_checkpoint(tmp_path / "b" / "final.npz").meta["step"] == 6
        resumed = resume(tmp_path / "b" / "final.npz", callbacks=[])
        assert resumed["steps"] == 12 and resumed["stopped"] == "steps"
        np.testing.assert_allclose(
            load_checkpoint(tmp_path / "a" / "final.npz").parameters,
            load_checkpoint(tmp_path / "b" / "final.npz").parameters, atol=1e-12,
        )
        assert resumed["best_validation_loss"] == pytest.approx(straight["best_validation_loss"], abs=1e-12)

    def test_stop_at_loss(self, tmp_path):
        first = train(TrainSettings(**SMALL, steps=30, validate_every=5), tmp_path / "a", callbacks=[])
        metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
        # a threshold just above the third validation's loss stops the run exactly there
        threshold = metrics[2]["validation_loss"] + 1e-12
        assert all(r["validation_loss"] >= threshold for r in metrics[:2]), "the first two must not stop it"
        stopped = train(TrainSettings(**SMALL, steps=30, validate_every=5, stop_at_loss=threshold), tmp_path / "b",
                        callbacks=[])
        assert stopped["stopped"] == "stop_at_loss" and stopped["steps"] == metrics[2]["step"] == 15
        assert first["stopped"] == "steps"

    def test_timeout_counts_the_time_of_earlier_pieces(self, tmp_path, monkeypatch):
        from qrnn_qiskit.training import loop

        clock = iter(range(0, 10_000, 10))  # every reading of the clock advances 10 s
        monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
        summary = train(TrainSettings(**SMALL, steps=50, validate_every=5, timeout=35.0), tmp_path, callbacks=[])
        assert summary["stopped"] == "timeout" and 1 <= summary["steps"] < 50
        first = summary["steps"]
        again = resume(tmp_path / "final.npz", callbacks=[])  # the 35 s are already spent
        assert again["stopped"] == "timeout" and again["steps"] == first + 1

    def test_a_callback_can_stop_the_run(self, tmp_path):
        class StopAt3(Callback):
            def on_step(self, state):
                state.stop = state.step >= 3

        summary = train(TrainSettings(**SMALL, steps=10, validate_every=5), tmp_path, callbacks=[StopAt3()])
        assert summary["stopped"] == "callback" and summary["steps"] == 3


def test_train_state_round_trips_through_a_checkpoint(tmp_path):
    from qrnn_qiskit.training.state import TrainState

    settings = TrainSettings(**SMALL, steps=4, validate_every=2)
    train(settings, tmp_path, callbacks=[])
    ck = load_checkpoint(tmp_path / "final.npz")
    state = TrainState.from_checkpoint(ck, settings, settings.load_dataset())
    again = state.to_checkpoint("final")
    np.testing.assert_array_equal(again.parameters, ck.parameters)
    assert again.state.keys() == ck.state.keys()
    for key in ck.state:
        np.testing.assert_array_equal(again.state[key], ck.state[key])
    for key in ("step", "rng_state", "validation_rng_state", "best_validation_loss", "settings", "dataset"):
        assert again.meta[key] == ck.meta[key], key
    with pytest.raises(ValueError, match="The checkpoint's model .* differs from the settings'"):
        TrainState.from_checkpoint(ck, settings.replace(workspace=3), settings.load_dataset())


def test_console_callbacks_print_progress_and_samples(tmp_path):
    import io

    from qrnn_qiskit.training.callbacks import ConsoleProgress, ShowSamples

    stream = io.StringIO()
    train(TrainSettings(**SMALL, steps=10, validate_every=5), tmp_path, callbacks=[ConsoleProgress(stream),
                                                                                    ShowSamples(file=stream)])
    text = stream.getvalue()
    assert "step     5  loss" in text and "step    10  loss" in text
    assert "target [" in text and "sampled [" in text and "P(right)" in text


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_grad_clip_scales_the_step_the_optimiser_takes(clip):
    """One SGD step moves the parameters by lr times the batch's gradient, taken here by central
    finite differences of the engine's loss, scaled to norm ``clip`` when longer (0: never), as the
    reference's clip_grad_norm_ (off in its main.py of 2020-06-17..20)."""
    from qrnn_qiskit.engine import ExactEngine
    from qrnn_qiskit.training.loop import fit
    from qrnn_qiskit.training.state import TrainState

    settings = TrainSettings(**dict(SMALL, optimizer="sgd", learning_rate=0.3, initial_weights_spread=0.5,
                                    initial_unitaries_spread=0.5), steps=1, validate_every=1, grad_clip=clip)
    dataset = settings.load_dataset()
    state = TrainState.initial(settings, dataset)
    start = state.parameters.copy()
    batch = dataset.batch(settings.data.batch_size, np.random.default_rng(0), "train")
    state.rng = np.random.default_rng(0)  # the step draws this batch
    fit(state)
    inputs, targets = batch.engine_arrays()
    engine = ExactEngine(state.config)

    def loss(x):
        return engine.loss_and_gradient(x, inputs, targets, dataset.scored())[0]

    eps = 1e-6
    grad = np.array([(loss(start + eps * e) - loss(start - eps * e)) / (2 * eps) for e in np.eye(len(start))])
    assert np.linalg.norm(grad) > 0.1  # clipping at 0.05 has something to do
    if clip:
        grad = grad * clip / (np.linalg.norm(grad) + 1e-6)
    np.testing.assert_allclose(state.parameters, start - 0.3 * grad, atol=1e-8)


def test_resume_refuses_fewer_steps_and_takes_a_new_stop_loss(tmp_path):
    train(TrainSettings(**SMALL, steps=6, validate_every=3), tmp_path / "a")
    with pytest.raises(ValueError, match=r"is at step 6: got 4\. Give a total of at least 6"):
        resume(tmp_path / "a" / "final.npz", steps=4)
    result = CliRunner().invoke(main, ["resume", str(tmp_path / "a" / "final.npz"), "--steps", "4"])
    assert result.exit_code != 0 and "steps (--steps) is the run's new total" in result.output
    summary = resume(tmp_path / "a" / "final.npz", steps=30, stop_at_loss=100.0)
    assert summary["stopped"] == "stop_at_loss" and summary["steps"] == 9  # the first validation after step 6


def test_config_json_reruns_the_run(tmp_path):
    """qrnn train --config run/config.json trains the same settings again (the same bits), and a
    flag beside it overrides its setting; a file that holds no settings says what is expected."""
    first = CliRunner().invoke(main, ["train", "--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1",
                                      "--degree", "1", "--sentence-length", "5", "--steps", "6", "--validate-every", "3",
                                      "--seed", "3", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "final.npz")["parameters"],
                                  np.load(tmp_path / "b" / "final.npz")["parameters"])
    longer = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "a" / "config.json"), "--steps", "9",
                                       "--out", str(tmp_path / "c"), "--json"])
    assert longer.exit_code == 0 and json.loads(longer.output.strip().splitlines()[-1])["steps"] == 9
    (tmp_path / "bad.json").write_text("[1, 2]")
    bad = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "bad.json")])
    assert bad.exit_code != 0 and "holds no training settings: expected a run folder's config.json" in bad.output


@pytest.mark.slow
@pytest.mark.parametrize(("signame", "code", "word"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_a_signal_stops_at_a_step_with_a_checkpoint_and_its_exit_code(tmp_path, signame, code, word):
    """SIGTERM (what a cluster scheduler sends) or Ctrl-C: the run stops at the next step boundary,
    writes final.npz and exits 128 + the signal; resumed, it ends on the uninterrupted run's
    parameters bit for bit."""
    import signal
    import subprocess
    import sys
    import time

    args = ["train", "--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1", "--degree", "2",
            "--sentence-length", "6", "--batch-size", "2", "--learning-rate", "0.05", "--seed", "5",
            "--steps", "4000", "--validate-every", "50"]
    proc = subprocess.Popen([sys.executable, "-m", "qrnn_qiskit.cli", *args, "--out", str(tmp_path / "cut")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-500:]
    assert f"{word} at step" in err
    cut = load_checkpoint(tmp_path / "cut" / "final.npz")
    steps = int(cut.meta["step"])
    assert 100 <= steps < 4000
    resumed = resume(tmp_path / "cut" / "final.npz", steps=steps + 30)
    straight = train(TrainSettings(**SMALL, steps=steps + 30, validate_every=50), tmp_path / "straight", callbacks=[])
    assert resumed["steps"] == straight["steps"] == steps + 30
    np.testing.assert_array_equal(np.load(tmp_path / "cut" / "final.npz")["parameters"],
                                  np.load(tmp_path / "straight" / "final.npz")["parameters"])
