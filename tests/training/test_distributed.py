"""Data-parallel training on a real local Ray instance (2 CPUs): the same trajectory as one
process whatever the split, a negative control, a killed worker, Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.training import load_checkpoint
from qrnn_qiskit.training.callbacks import Callback
from qrnn_qiskit.training.trainer import TrainSettings, resume, train

ray = pytest.importorskip("ray")

# batch_size 5 of simple-seq's patterns: shards of 3 and 2 sequences (unequal)
SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=5,
             learning_rate=0.05, seed=5, steps=5, validate_every=5)


# On the compiled engine (the default) every worker returns one loss and gradient row per sequence
# and the driver adds them in batch order exactly as one process does: the trajectories are equal
# bit for bit, L-BFGS included (it amplifies any rounding difference: with shard sums, measured
# 5e-12 after 1 step and 1.3e-10 after 5). The numpy path returns shard sums, so there L-BFGS
# is held to 1e-9 -- still far below the negative control's 1e-4.
@pytest.mark.parametrize(("engine", "optimizer", "tolerance"),
                         [("cpu", "adam", 0.0), ("cpu", "lbfgs", 0.0), ("numpy", "lbfgs", 1e-9)])
def test_two_workers_equal_one_process(tmp_path, engine, optimizer, tolerance):
    one = train(TrainSettings(**SMALL, optimizer=optimizer, engine=engine), tmp_path / "one", callbacks=[])
    two = train(TrainSettings(**SMALL, optimizer=optimizer, engine=engine, workers=2), tmp_path / "two", callbacks=[])
    a, b = load_checkpoint(tmp_path / "one" / "final.npz"), load_checkpoint(tmp_path / "two" / "final.npz")
    np.testing.assert_allclose(b.parameters, a.parameters, rtol=0, atol=tolerance)
    assert two["final_loss"] == pytest.approx(one["final_loss"], abs=tolerance)
    assert not ray.is_initialized()  # the local instance was shut down


def test_negative_control_unweighted_shard_means_differ():
    """Averaging the shards' mean losses (instead of their sums over the count) is wrong for
    unequal shards: the check above would catch it."""
    cfg = QRNNConfig(input_width=3, workspace=2, stages=1, order=1, degree=2)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, seed=1)
    inputs = np.array([[0, 1, 2, 3, 0], [1, 1, 1, 1, 1], [2, 3, 0, 1, 2], [4, 4, 4, 4, 4], [3, 0, 1, 2, 3]])
    targets, scored = inputs, np.ones(5, bool)
    engine = ExactEngine(cfg)
    whole, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    shards = [engine.loss_and_gradient(params, x, y, scored)[:2]
              for x, y in zip(np.array_split(inputs, 2), np.array_split(targets, 2))]
    weighted = (3 * shards[0][0] + 2 * shards[1][0]) / 5
    unweighted = (shards[0][0] + shards[1][0]) / 2
    assert weighted == pytest.approx(whole, abs=1e-14)
    assert abs(unweighted - whole) > 1e-4
    assert np.abs((shards[0][1] + shards[1][1]) / 2 - grad).max() > 1e-4


class _KillWorker(Callback):
    def __init__(self, objective_holder, at: int) -> None:
        self.holder, self.at = objective_holder, at

    def on_step(self, state) -> None:
        if state.step == self.at:
            self.holder[0].kill_worker(1)


def test_a_killed_worker_is_replaced_and_the_trajectory_kept(tmp_path, monkeypatch):
    from qrnn_qiskit.training import trainer

    holder = []
    make = trainer._objective
    monkeypatch.setattr(trainer, "_objective", lambda state: holder.append(make(state)) or holder[0])
    train(TrainSettings(**SMALL), tmp_path / "one", callbacks=[])
    holder.clear()
    train(TrainSettings(**SMALL, workers=2), tmp_path / "two", callbacks=[_KillWorker(holder, 2)])
    assert holder[0].replaced == 1
    np.testing.assert_allclose(load_checkpoint(tmp_path / "two" / "final.npz").parameters,
                               load_checkpoint(tmp_path / "one" / "final.npz").parameters, rtol=0, atol=1e-12)


class _Interrupt(Callback):
    def on_step(self, state) -> None:
        if state.step == 3:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_a_resumable_run_and_no_ray(tmp_path):
    cut = train(TrainSettings(**SMALL, workers=2), tmp_path / "run", callbacks=[_Interrupt()])
    assert cut["stopped"] == "interrupted" and cut["steps"] == 3 and not ray.is_initialized()
    resumed = resume(tmp_path / "run" / "final.npz", workers=1, callbacks=[])  # back to one process
    train(TrainSettings(**SMALL), tmp_path / "one", callbacks=[])
    assert resumed["steps"] == 5
    np.testing.assert_allclose(load_checkpoint(tmp_path / "run" / "final.npz").parameters,
                               load_checkpoint(tmp_path / "one" / "final.npz").parameters, rtol=0, atol=1e-12)


def test_bad_worker_settings(tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        TrainSettings(**SMALL, workers=0).validate()
    with pytest.raises(ValueError, match="backend 'aer' runs in one process"):
        TrainSettings(**SMALL, workers=2, backend="aer").validate()
    with pytest.raises(ValueError, match="address 'auto' joins a Ray cluster .* set workers > 1"):
        TrainSettings(**SMALL, address="auto").validate()
    from qrnn_qiskit.core.errors import QRNNError

    with pytest.raises(QRNNError, match=r"Could not reach the Ray cluster at address '127.0.0.1:1'"):
        train(TrainSettings(**SMALL, workers=2, address="127.0.0.1:1"), tmp_path, callbacks=[])
    with pytest.raises(ValueError, match="address must be 'auto' or 'HOST:PORT' of a Ray head node, got 'nowhere'"):
        train(TrainSettings(**SMALL, workers=2, address="nowhere"), tmp_path, callbacks=[])
    assert not ray.is_initialized()
