"""Sweeps: every trial a normal run folder, the table, an interrupted sweep continued, Ray tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.sweep import parse_grid, parse_seeds, sweep, trial_name
from qrnn_qiskit.workflows.train import train

BASE = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2,
            learning_rate=0.05, steps=10, validate_every=5)
GRID = ["optimizer=adam,rmsprop"]


def test_grid_and_seed_parsing():
    assert parse_grid(["optimizer=adam,rmsprop", "--learning-rate=0.01,0.1", "stages=1,2"]) == {
        "optimizer": ["adam", "rmsprop"], "learning_rate": [0.01, 0.1], "stages": [1, 2]}
    assert parse_grid({"learning_rate": [0.5]}) == {"learning_rate": [0.5]}
    assert parse_grid(["lr-schedule=10:0.01"]) == {"lr_schedule": [[[10, 0.01]]]}
    assert parse_seeds("112-114", 0) == [112, 113, 114]
    assert parse_seeds("1,5,9", 0) == [1, 5, 9]
    assert parse_seeds(None, 7) == [7]
    assert trial_name({"optimizer": "adam", "learning_rate": 0.01}, 3) == "optimizer-adam_learning-rate-0.01_seed-3"


@pytest.mark.parametrize(
    ("grid", "seeds", "message"),
    [
        (["colour=red"], None, r"unknown setting 'colour'; sweepable: .*learning_rate"),
        (["learning-rate=fast"], None, r"learning_rate takes float values, got 'fast'"),
        (["optimizer=adamw2"], None, r"optimizer takes one of adam, sgd, rmsprop, lbfgs, got 'adamw2'"),
        (["seed=1,2"], None, r"seeds are swept with seeds"),
        (["learning-rate"], None, r"grid entries look like learning-rate=0.01,0.05"),
        (GRID, "1-x", r"seeds must look like 112-116 or 1,5,9"),
        (GRID, "1,1", r"distinct seeds"),
    ],
)
def test_bad_grids_and_seeds_say_what_is_expected(tmp_path, grid, seeds, message):
    with pytest.raises(ValueError, match=message):
        sweep(TrainSettings(**BASE), tmp_path, grid=grid, seeds=seeds)


def test_four_trials_are_four_normal_run_folders_with_a_table(tmp_path, caplog):
    caplog.set_level("INFO", logger="qrnn_qiskit")
    result = sweep(TrainSettings(**BASE), tmp_path / "sw", grid=GRID, seeds="1-2", target_loss=0.5)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep: trial")]
    assert said[0] == "sweep: trial optimizer-adam_seed-1 (1 of 4 pending) starts" and len(said) == 8
    assert said[-1].startswith("sweep: trial optimizer-rmsprop_seed-2 ended (steps) after 10 steps in ")
    names = [row["trial"] for row in result["trials"]]
    assert names == ["optimizer-adam_seed-1", "optimizer-adam_seed-2", "optimizer-rmsprop_seed-1",
                     "optimizer-rmsprop_seed-2"]
    for name in names:
        for file in ("config.json", "metrics.jsonl", "best.npz", "final.npz", "summary.json"):
            assert (tmp_path / "sw" / name / file).is_file(), (name, file)
    # a trial is exactly the run `qrnn train` makes with its settings
    direct = train(TrainSettings(**BASE, optimizer="rmsprop", seed=2), tmp_path / "direct", callbacks=[])
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "sw" / names[3] / "final.npz").parameters,
                                  load_checkpoint(tmp_path / "direct" / "final.npz").parameters)
    row = result["trials"][3]
    assert row["best_validation_loss"] == direct["best_validation_loss"]
    assert row["optimizer"] == "rmsprop" and row["seed"] == 2 and row["steps"] == 10
    table = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["trial"] for r in table["trials"]] == names
    # steps_to_target is the first validation below the target, read from the metrics
    for r in table["trials"]:
        records = [json.loads(line) for line in (tmp_path / "sw" / r["trial"] / "metrics.jsonl").read_text().splitlines()]
        below = [rec["step"] for rec in records if rec["validation_loss"] < 0.5]
        assert r["steps_to_target"] == (below[0] if below else None)


def test_a_sweep_folder_for_other_settings_is_refused(tmp_path):
    sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path, grid=["optimizer=adam"])
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path, grid=["optimizer=rmsprop"])


def test_a_sweep_planned_before_a_setting_existed_continues(tmp_path):
    """A plan.json written by an older version lacks newer settings: they read as their defaults."""
    first = sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path, grid=["optimizer=adam"])
    plan = json.loads((tmp_path / "plan.json").read_text())
    del plan["settings"]["score_all_steps"]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    again = sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path, grid=["optimizer=adam"])
    assert again["trials"] == first["trials"]
    with pytest.raises(ValueError, match="holds another sweep"):  # a setting that differs still does
        sweep(TrainSettings(**{**BASE, "steps": 5}, score_all_steps=True), tmp_path, grid=["optimizer=adam"])


@pytest.mark.slow
def test_an_interrupted_sweep_continues_only_its_unfinished_trials(tmp_path):
    """Ctrl-C during the third trial; the rerun keeps the two finished ones untouched and continues
    the third from its final.npz onto the uninterrupted trajectory."""
    out = tmp_path / "sw"
    args = [sys.executable, "-m", "qrnn_qiskit.cli", "sweep", "--dataset", "simple-seq", "-W", "3", "-S", "1", "-k", "1",
            "-d", "2", "--sentence-length", "8", "--batch-size", "2", "--learning-rate", "0.05", "--steps", "3000",
            "--validate-every", "10", "--grid", "optimizer=adam,rmsprop", "--seeds", "1-2", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the signal goes as soon as the third trial has logged its first validation: 3000 steps take
    # seconds, so it cannot finish first (800 steps and a fixed 1 s wait once raced on a fast CI)
    metrics = out / "optimizer-rmsprop_seed-1" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().strip()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    finished = sorted(p.parent.name for p in out.glob("*/summary.json"))
    assert finished == ["optimizer-adam_seed-1", "optimizer-adam_seed-2"]
    interrupted = out / "optimizer-rmsprop_seed-1"
    assert (interrupted / "final.npz").is_file() and not (interrupted / "summary.json").exists()
    stamps = {name: os.stat(out / name / "summary.json").st_mtime_ns for name in finished}
    done = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {name: os.stat(out / name / "summary.json").st_mtime_ns for name in finished} == stamps
    assert len(list(out.glob("*/summary.json"))) == 4
    straight = TrainSettings(dataset="simple-seq", workspace=3, stages=1, order=1, degree=2, sentence_length=8,
                             batch_size=2, learning_rate=0.05, steps=3000, validate_every=10, optimizer="rmsprop", seed=1)
    train(straight, tmp_path / "straight", callbacks=[])
    np.testing.assert_allclose(load_checkpoint(interrupted / "final.npz").parameters,
                               load_checkpoint(tmp_path / "straight" / "final.npz").parameters, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_trials_on_ray_tasks_equal_the_trials_in_this_process(tmp_path):
    ray = pytest.importorskip("ray")
    here = sweep(TrainSettings(**BASE), tmp_path / "here", grid=GRID, seeds="1-2")
    there = sweep(TrainSettings(**BASE), tmp_path / "ray", grid=GRID, seeds="1-2", max_concurrent=2)
    assert not ray.is_initialized()
    for a, b in zip(here["trials"], there["trials"]):
        assert a["trial"] == b["trial"] and a["best_validation_loss"] == b["best_validation_loss"]
        np.testing.assert_array_equal(load_checkpoint(tmp_path / "here" / a["trial"] / "final.npz").parameters,
                                      load_checkpoint(tmp_path / "ray" / b["trial"] / "final.npz").parameters)


def test_the_plot_draws_loss_against_the_numeric_setting(tmp_path):
    pytest.importorskip("matplotlib")
    result = sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path, grid=["optimizer=adam,sgd", "learning-rate=0.01,0.1"])
    assert result["plot"] is not None and (tmp_path / "sweep.png").stat().st_size > 1000


def test_the_plot_survives_a_target_no_trial_reaches_and_a_swept_zero(tmp_path):
    # a sweep in which no trial reaches the target loss once crashed on its log-scaled plot after
    # every trial had trained (the DNA study's RNN at L = 1000); a swept 0 cannot be log-scaled either
    pytest.importorskip("matplotlib")
    for name, grid in (("unreached", "learning-rate=0.01,0.1"), ("zero", "weight-decay=0,0.1")):
        result = sweep(TrainSettings(**{**BASE, "steps": 5}), tmp_path / name, grid=[grid], target_loss=1e-12)
        assert [row["steps_to_target"] for row in result["trials"]] == [None, None]
        assert result["plot"] is not None and (tmp_path / name / "sweep.png").stat().st_size > 1000
        assert json.loads((tmp_path / name / "sweep.json").read_text())["trials"][0]["steps_to_target"] is None


def test_more_seeds_extend_a_sweep_and_fewer_are_refused(tmp_path):
    settings = TrainSettings(**{**BASE, "steps": 5})
    sweep(settings, tmp_path, grid=["optimizer=adam"], seeds="1")
    first = (tmp_path / "optimizer-adam_seed-1" / "final.npz").stat().st_mtime_ns
    result = sweep(settings, tmp_path, grid=["optimizer=adam"], seeds="1-2")  # seed 1 kept, seed 2 trained
    assert [row["trial"] for row in result["trials"]] == ["optimizer-adam_seed-1", "optimizer-adam_seed-2"]
    assert (tmp_path / "optimizer-adam_seed-1" / "final.npz").stat().st_mtime_ns == first
    assert json.loads((tmp_path / "plan.json").read_text())["trials"][-1] == "optimizer-adam_seed-2"
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep(settings, tmp_path, grid=["optimizer=adam"], seeds="2")


def test_grid_values_that_parse_alike_and_names_that_would_leave_out(tmp_path):
    with pytest.raises(ValueError, match=r"gives the same value twice once parsed: 0\.01"):
        parse_grid(["learning-rate=0.01,0.010,1e-2"])
    name = trial_name({"data_dir": "../../x"}, 1)
    assert "/" not in name and ".." not in name and name.endswith("seed-1")
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
