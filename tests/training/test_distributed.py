"""Data-parallel training on a real local Ray instance (2 CPUs): the same trajectory as one
process whatever the split, a negative control, a killed worker, Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.callbacks import Callback
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.training.state import TrainState
from qrnn_qiskit.workflows.train import resume, train

ray = pytest.importorskip("ray")

# batch_size 5 of simple-seq's patterns: shards of 3 and 2 sequences (unequal)
SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=5,
             learning_rate=0.05, seed=5, steps=5, validate_every=5)


# Every engine backend gives one loss and gradient row per sequence, and the driver adds them in
# batch order exactly as one process does: the trajectories are equal bit for bit, L-BFGS included
# (it amplifies any rounding difference), on the numpy path and for amplified neurons (complex
# amplitudes, which the compiled kernels do not compute) as well.
@pytest.mark.slow
@pytest.mark.parametrize(("engine", "optimizer", "neuron_mode"),
                         [("cpu", "adam", "postselect"), ("cpu", "lbfgs", "postselect"), ("numpy", "lbfgs", "postselect"),
                          ("cpu", "adam", "amplify:3")])
def test_two_workers_equal_one_process(tmp_path, engine, optimizer, neuron_mode):
    settings = TrainSettings(**SMALL, optimizer=optimizer, engine=engine, neuron_mode=neuron_mode)
    one = train(settings, tmp_path / "one", callbacks=[])
    two = train(settings.replace(workers=2), tmp_path / "two", callbacks=[])
    a, b = load_checkpoint(tmp_path / "one" / "final.npz"), load_checkpoint(tmp_path / "two" / "final.npz")
    start = TrainState.initial(settings, settings.load_dataset()).parameters
    assert np.abs(a.parameters - start).max() > 1e-3  # training moved the parameters
    np.testing.assert_array_equal(b.parameters, a.parameters)
    assert two["final_loss"] == one["final_loss"]
    assert not ray.is_initialized()  # the local instance was shut down


@pytest.mark.slow
def test_the_command_line_trains_amplified_neurons_on_two_workers(tmp_path):
    """``qrnn train --workers 2 --neuron-mode amplify:3`` (it failed before the engine's backends
    all returned rows) gives the one-process run's parameters bit for bit."""
    from click.testing import CliRunner

    from qrnn_qiskit.cli import main

    args = ["train", "--dataset", "simple-seq", "-W", "2", "-S", "1", "-k", "1", "--sentence-length", "6",
            "--batch-size", "5", "--steps", "3", "--validate-every", "3", "--neuron-mode", "amplify:3"]
    for folder, extra in (("one", []), ("two", ["--workers", "2"])):
        result = CliRunner().invoke(main, [*args, *extra, "--out", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "two" / "final.npz").parameters,
                                  load_checkpoint(tmp_path / "one" / "final.npz").parameters)


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


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_trajectory_kept(tmp_path, monkeypatch):
    from qrnn_qiskit.workflows import train as trainer

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


@pytest.mark.slow
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


def test_shard_bounds_are_array_split_s_and_align_to_blocks():
    from qrnn_qiskit.training.distributed import shard_bounds

    for count in range(1, 30):
        for workers in range(1, 6):
            sizes = [len(a) for a in np.array_split(np.arange(count), workers)]
            assert np.diff([0, *shard_bounds(count, workers), count]).tolist() == sizes
            aligned = [0, *shard_bounds(count, workers, 8), count]
            assert all(b % 8 == 0 for b in aligned[1:-1] if b < count)
            assert sorted(aligned) == aligned  # in order, covering every sequence once


def test_an_address_that_is_not_ray_fails_within_seconds(tmp_path):
    """A real HTTP server on 127.0.0.1 (ray.init would wait on it for minutes) and a port that
    accepts but never answers are refused within seconds; a real local Ray head's address passes."""
    import http.server
    import socket
    import threading
    import time

    from qrnn_qiskit.core.errors import QRNNError
    from qrnn_qiskit.training.distributed import _check_reachable

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        started = time.monotonic()
        with pytest.raises(QRNNError, match=r"at address '127\.0\.0\.1:\d+' does not answer as a Ray cluster does "
                                            r"\(gRPC over HTTP/2; it answered b'"):
            train(TrainSettings(**SMALL, workers=2, address=f"127.0.0.1:{httpd.server_address[1]}"), tmp_path / "a",
                  callbacks=[])
        assert time.monotonic() - started < 10
        with pytest.raises(QRNNError, match=r"it answered nothing within 5 s"):
            _check_reachable(f"127.0.0.1:{silent.getsockname()[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
        silent.close()
    assert not (tmp_path / "a").exists() and not ray.is_initialized()
    ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        _check_reachable(ray.get_runtime_context().gcs_address)  # a real head answers gRPC: no error
    finally:
        ray.shutdown()
