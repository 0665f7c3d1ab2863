"""Run folders that cannot be clobbered, checkpoints that lose little, and divergence that stops
with the last finite state: in process, through the command line, and in real subprocesses
killed with SIGKILL or racing for one folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.errors import CheckpointError, QRNNError
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.runfolder import RunFolderError, newest_checkpoint, run_folder
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows import train as train_module
from qrnn_qiskit.workflows.train import resume, train

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2,
             learning_rate=0.05, seed=5)
CLI_SMALL = ["--dataset", "simple-seq", "-W", "2", "-S", "1", "--order", "1", "--degree", "2", "--sentence-length", "6",
             "--batch-size", "2", "--learning-rate", "0.05", "--seed", "5"]


def _metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_an_existing_run_is_refused_and_overwrite_replaces_only_its_run_files(tmp_path):
    run = tmp_path / "run"
    train(TrainSettings(**SMALL, steps=6, validate_every=3), run, callbacks=[])
    before = {name: (run / name).read_bytes() for name in ("config.json", "best.npz", "final.npz", "metrics.jsonl")}
    with pytest.raises(RunFolderError, match=r"is not empty \(best\.npz, config\.json, final\.npz, last\.npz, "
                                             r"metrics\.jsonl\)\. Continue its run with `qrnn resume"):
        train(TrainSettings(**{**SMALL, "seed": 6}, steps=4, validate_every=2), run, callbacks=[])
    assert {name: (run / name).read_bytes() for name in before} == before  # nothing touched
    result = CliRunner().invoke(main, ["train", *CLI_SMALL, "--steps", "4", "--out", str(run)])
    assert result.exit_code == 1 and "or pass --overwrite to replace the run in it" in result.output
    (run / "notes.txt").write_text("mine")
    train(TrainSettings(**{**SMALL, "seed": 6}, steps=4, validate_every=2), run, overwrite=True, callbacks=[])
    assert [r["step"] for r in _metrics(run)] == [2, 4]  # the old run's lines are gone, not appended to
    assert json.loads((run / "config.json").read_text())["settings"]["seed"] == 6
    assert (run / "notes.txt").read_text() == "mine" and not (run / ".lock").exists()


def test_a_run_that_cannot_start_leaves_no_folder(tmp_path, monkeypatch):
    def missing(state):
        raise QRNNError("the distributed extra is not installed")

    monkeypatch.setattr(train_module, "_objective", missing)
    with pytest.raises(QRNNError, match="distributed extra"):
        train(TrainSettings(**SMALL, steps=4), tmp_path / "new" / "run", callbacks=[])
    assert not (tmp_path / "new" / "run").exists()


def test_resume_writes_only_into_its_own_run_or_a_new_folder(tmp_path):
    train(TrainSettings(**SMALL, steps=6, validate_every=3), tmp_path / "a", callbacks=[])
    train(TrainSettings(**{**SMALL, "seed": 9}, steps=6, validate_every=3), tmp_path / "b", callbacks=[])
    b_final = (tmp_path / "b" / "final.npz").read_bytes()
    with pytest.raises(RunFolderError, match="is not empty"):  # would replace b's checkpoint under b's config
        resume(tmp_path / "a" / "final.npz", tmp_path / "b", steps=9, callbacks=[])
    assert (tmp_path / "b" / "final.npz").read_bytes() == b_final
    summary = resume(tmp_path / "a" / "final.npz", tmp_path / "c", steps=9, callbacks=[])
    assert summary["steps"] == 9 and [r["step"] for r in _metrics(tmp_path / "c")] == [3, 6, 9]


def test_resume_a_folder_takes_its_newest_checkpoint_and_never_repeats_a_metrics_line(tmp_path):
    straight = tmp_path / "straight"
    train(TrainSettings(**SMALL, steps=40, validate_every=5), straight, callbacks=[])
    run = tmp_path / "run"
    train(TrainSettings(**SMALL, steps=40, validate_every=5), run, callbacks=[])
    # as a kill leaves it: metrics up to step 40, but the newest checkpoint at step 20
    train(TrainSettings(**SMALL, steps=20, validate_every=5), tmp_path / "half", callbacks=[])
    for name in ("final.npz", "best.npz"):
        (run / name).unlink()
    (run / "last.npz").write_bytes((tmp_path / "half" / "final.npz").read_bytes())
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 45, "lo')  # a line cut off by the kill
    path, checkpoint = newest_checkpoint(run)
    assert path.name == "last.npz" and checkpoint.meta["step"] == 20
    resume(run, steps=40, callbacks=[])  # the half run was told 20 steps
    steps = [r["step"] for r in _metrics(run)]
    assert steps == sorted(set(steps)) == list(range(5, 41, 5))
    assert _without_time(_metrics(run)) == _without_time(_metrics(straight))
    np.testing.assert_array_equal(load_checkpoint(run / "final.npz").parameters,
                                  load_checkpoint(straight / "final.npz").parameters)


def test_a_missing_checkpoint_names_the_folders_others(tmp_path):
    run = tmp_path / "run"
    train(TrainSettings(**SMALL, steps=6, validate_every=3), run, callbacks=[])
    (run / "final.npz").unlink()
    with pytest.raises(CheckpointError, match=r"No checkpoint at .*final\.npz\. .* holds last\.npz \(step 6\), "
                                              r"best\.npz \(step \d\): `qrnn resume .*run` continues from the newest"):
        resume(run / "final.npz", callbacks=[])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no readable checkpoint"):
        resume(empty, callbacks=[])


def test_last_npz_is_written_every_n_steps(tmp_path):
    seen = []

    class Watch(train_module.Callback):
        def on_step(self, state):
            path = tmp_path / "run" / "last.npz"
            seen.append(load_checkpoint(path).meta["step"] if path.exists() else None)

    train(TrainSettings(**SMALL, steps=12, validate_every=100, checkpoint_every=4), tmp_path / "run", callbacks=[Watch()])
    # as each step's hooks see it: 0 from the start, then 4 and 8; step 12 validates (the last step),
    # so its write waits for the validation, whose random stream a resumed run must continue
    assert seen == [0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 8]
    assert load_checkpoint(tmp_path / "run" / "last.npz").meta["step"] == 12


def test_divergence_stops_with_the_last_finite_state_and_names_the_step(tmp_path):
    """A learning rate that turns to 1e308 after step 5: the run stops at step 6 with step 5's
    state, which is the plain run's step 5 bit for bit; the command exits 1 naming the step."""
    train(TrainSettings(**SMALL, steps=5, validate_every=5), tmp_path / "plain", callbacks=[])
    summary = train(TrainSettings(**SMALL, steps=20, validate_every=5, lr_schedule=[[5, 1e308]]), tmp_path / "blow",
                    callbacks=[])
    assert summary["stopped"] == "diverged" and summary["diverged_at_step"] == 6 and summary["steps"] == 5
    for name in ("last.npz", "final.npz"):
        np.testing.assert_array_equal(load_checkpoint(tmp_path / "blow" / name).parameters,
                                      load_checkpoint(tmp_path / "plain" / "final.npz").parameters)
    result = CliRunner().invoke(main, ["train", *CLI_SMALL, "--learning-rate", "1e308", "--steps", "5",
                                       "--out", str(tmp_path / "cli")])
    assert result.exit_code == 1
    assert "training diverged at step 1 (parameters not finite). The last finite state, step 0" in result.output
    assert "qrnn resume" in result.output and "--learning-rate LR" in result.output
    again = resume(tmp_path / "cli", learning_rate=0.05, steps=3, callbacks=[])  # continued with a sane rate
    assert again["stopped"] == "steps" and again["steps"] == 3


def test_a_held_folder_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom qrnn_qiskit.training.runfolder import run_folder\n"
         "with run_folder(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n", str(tmp_path / "run")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=rf"in use by process {holder.pid} "):
            train(TrainSettings(**SMALL, steps=4), tmp_path / "run", overwrite=True, callbacks=[])
        with pytest.raises(RunFolderError, match=rf"in use by process {holder.pid} "), run_folder(tmp_path / "run"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_folder(tmp_path / "run", continuing=True):  # the kernel released the dead holder's lock
        pass


def _start(args, out):
    return subprocess.Popen([sys.executable, "-m", "qrnn_qiskit.cli", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(metrics, count, proc, seconds=120):
    deadline = time.time() + seconds
    while not (metrics.is_file() and metrics.read_text().count("\n") >= count):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-500:] if proc.poll() else "timeout"
        time.sleep(0.1)


@pytest.mark.slow
def test_two_writers_the_second_is_refused_and_the_first_is_intact(tmp_path):
    run = tmp_path / "run"
    # far more steps than the test lasts: the first run is still writing when the others try
    first = _start(["train", *CLI_SMALL, "--steps", "10000000", "--validate-every", "50"], run)
    try:
        _wait_for_lines(run / "metrics.jsonl", 1, first)
        for args in (["train", *CLI_SMALL, "--seed", "6", "--steps", "10", "--overwrite"], ["resume", str(run)]):
            second = subprocess.run([sys.executable, "-m", "qrnn_qiskit.cli", *args, "--out", str(run)],
                                    capture_output=True, text=True, timeout=120)
            assert first.poll() is None  # still running: a real second writer
            assert second.returncode == 1 and f"is in use by process {first.pid} " in second.stderr, second.stderr
            assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130
    assert json.loads((run / "config.json").read_text())["settings"]["seed"] == 5
    steps = [r["step"] for r in _metrics(run)]
    assert steps == list(range(50, 50 * len(steps) + 1, 50))
    assert load_checkpoint(run / "final.npz").meta["settings"]["seed"] == 5


@pytest.mark.slow
def test_kill_9_loses_at_most_the_checkpoint_interval_and_resume_ends_bit_for_bit(tmp_path):
    run, every = tmp_path / "run", 20
    proc = _start(["train", *CLI_SMALL, "--steps", "10000000", "--validate-every", "50", "--checkpoint-every", str(every)],
                  run)
    _wait_for_lines(run / "metrics.jsonl", 3, proc)
    time.sleep(np.random.default_rng().uniform(0, 0.5))  # a random step
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    reached = max(r["step"] for r in _metrics(run))
    _, newest = newest_checkpoint(run)
    assert newest.meta["step"] >= reached - every  # at most one interval lost (step counted at the last validation)
    total = reached + 60
    summary = resume(run, steps=total, callbacks=[])
    assert summary["steps"] == total
    train(TrainSettings(**SMALL, steps=total, validate_every=50), tmp_path / "straight", callbacks=[])
    np.testing.assert_array_equal(load_checkpoint(run / "final.npz").parameters,
                                  load_checkpoint(tmp_path / "straight" / "final.npz").parameters)
    assert _without_time(_metrics(run)) == _without_time(_metrics(tmp_path / "straight"))  # no line twice
