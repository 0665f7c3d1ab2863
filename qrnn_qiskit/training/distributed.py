"""Data-parallel gradients on Ray (``train(..., workers=N)``; the ``distributed`` extra).

Each step's batch is split in order into ``N`` shards (sizes may differ by one; on the density
path by one block of rows, so shards start where its blocks do). Every shard goes to a Ray actor that holds an exact engine and returns the loss and gradient
terms of its sequences with their count. On the compiled engine paths these are one row per
sequence (every engine backend gives rows), which the driver adds in batch order exactly as one
process does, so the result is the single-process one bit for bit, whatever ``N`` and however the
batch is split. The optimiser step (L-BFGS's several evaluations included) stays on the driver.

A worker that dies is replaced and its shard recomputed once; a second failure in the same
evaluation stops the run with the last checkpoint intact. Without ``address`` a local Ray
instance with ``N`` CPUs is started and shut down at the end (Ctrl-C included); with one
(``auto`` or ``HOST:PORT``) the run joins that cluster and leaves it running.
"""

from __future__ import annotations

import logging
import socket

import numba
import numpy as np

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine.backends.density import ROW_BLOCK
from qrnn_qiskit.engine.facade import ExactEngine
from qrnn_qiskit.engine.results import combine_rows
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.training.optim import clip_grad_norm

__all__ = ["DataParallelObjective", "connect_ray", "one_kernel_thread", "shard_bounds"]

logger = logging.getLogger("qrnn_qiskit")


def shard_bounds(count: int, workers: int, align: int = 1) -> list[int]:
    """Where ``count`` sequences are cut into ``workers`` shards in order, as evenly as blocks of
    ``align`` allow (``numpy.array_split``'s cuts for ``align=1``)."""
    blocks = -(-count // align)
    sizes = [blocks // workers + (k < blocks % workers) for k in range(workers)]
    return [min(count, align * sum(sizes[: k + 1])) for k in range(workers - 1)]


class _ShardWorker:
    """The Ray actor: one exact engine, reused for every shard it is sent."""

    def __init__(self, model: dict, scored: np.ndarray, spec: dict) -> None:
        spec = EngineSpec.from_dict(spec)
        one_kernel_thread(spec.path)
        self.engine = ExactEngine(QRNNConfig.from_dict(model), engine=spec)
        self.scored = scored

    def sums(self, params, inputs, targets):
        """The shard's per-sequence loss and gradient rows (the driver adds them in global
        sequence order), their count and the smallest teacher-forced probability."""
        loss_rows, grad_rows, result = self.engine.loss_and_gradient_rows(params, inputs, targets, self.scored)
        return loss_rows, grad_rows, inputs.shape[0], result.min_postselection_probability


class DataParallelObjective:
    """The training objective of :mod:`qrnn_qiskit.training.loop`, evaluated on Ray actors.

    Args:
        config: the model.
        scored: the dataset's scored-step mask.
        workers: number of actors (shards per batch).
        address: ``None`` (start a local Ray instance with ``workers`` CPUs), ``"auto"`` or
            ``"HOST:PORT"`` (join a running cluster).
        clip: the gradient-norm clip applied to the combined gradient.

    Raises:
        MissingOptionalDependency: without the ``distributed`` extra.
        ValueError: for fewer than one worker.
        QRNNError: when the cluster cannot be reached.
    """

    def __init__(self, config: QRNNConfig, scored: np.ndarray, workers: int, address: str | None, clip: float,
                 engine: str | EngineSpec = "cpu") -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}.")
        self._owns_ray = connect_ray(address, workers, "workers > 1 (data-parallel training)")
        import ray

        self.config, self.scored, self.clip, self.workers = config, scored, clip, workers
        self.spec = EngineSpec.parse(engine)
        self._actor_class = ray.remote(num_cpus=1)(_ShardWorker)
        self._actors = [self._new_actor() for _ in range(workers)]
        self.inputs = self.targets = None
        self.min_postselection: float | None = None
        self.replaced = 0

    def _new_actor(self):
        return self._actor_class.remote(self.config.to_dict(), self.scored, self.spec.to_dict())

    def start(self, batch) -> None:
        self.inputs, self.targets = batch.engine_arrays()
        self.min_postselection = None

    def __call__(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        parts = self._evaluate(values)
        if self.min_postselection is None:
            self.min_postselection = min(part[3] for part in parts)
        # every sequence's row, in batch order: the single process's sum, bit for bit
        loss, grad = combine_rows(np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts]),
                                  int(np.count_nonzero(self.scored)), self.config.input_width)
        return loss, clip_grad_norm(grad, self.clip)[0]

    def _evaluate(self, values: np.ndarray) -> list:
        import ray

        bounds = shard_bounds(self.inputs.shape[0], self.workers, ROW_BLOCK if self.spec.backend == "density" else 1)
        shards = list(zip(np.split(self.inputs, bounds), np.split(self.targets, bounds)))
        futures = [actor.sums.remote(values, x, y) for actor, (x, y) in zip(self._actors, shards) if len(x)]
        results = []
        for k, future in enumerate(futures):
            try:
                results.append(ray.get(future))
            except ray.exceptions.RayActorError:  # the worker died: replace it, recompute its shard once
                logger.info("worker %d died; replacing it and recomputing its shard", k)
                self.replaced += 1
                self._actors[k] = self._new_actor()
                try:
                    results.append(ray.get(self._actors[k].sums.remote(values, *shards[k])))
                except ray.exceptions.RayActorError as exc:
                    raise QRNNError(
                        f"Worker {k} died twice in one step ({exc}); the run stops with its last checkpoint intact: "
                        "continue it with qrnn resume."
                    ) from None
        return results

    def kill_worker(self, k: int) -> None:
        """Kill actor ``k`` (to test recovery); the next evaluation replaces it."""
        import ray

        ray.kill(self._actors[k], no_restart=True)

    def close(self) -> None:
        """Release the actors; shut down the Ray instance this objective started."""
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


def connect_ray(address: str | None, num_cpus: int, feature: str) -> bool:
    """Start a local Ray instance with ``num_cpus`` CPUs (``address`` None) or join the cluster at
    ``address`` (``auto`` or ``HOST:PORT``), unless Ray is already running here; returns whether
    this call did, so the caller shuts it down (a cluster keeps running: only this driver leaves).

    Raises:
        MissingOptionalDependency: without the distributed extra (``feature`` says what needs it).
        QRNNError: when the cluster cannot be reached.
    """
    optionals.require("ray", feature)
    import ray

    if ray.is_initialized():
        return False
    if address not in (None, "auto"):
        _check_reachable(address)
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise QRNNError(
            f"Could not reach the Ray cluster at address {address!r} ({exc}); start one with `ray start --head` "
            "or leave address out for a local instance."
        ) from None
    return True


def one_kernel_thread(engine: str) -> None:
    """In a Ray actor or task that holds one CPU: one compiled-kernel thread, no oversubscription."""
    if engine == "cpu":
        numba.set_num_threads(1)


def _check_reachable(address: str) -> None:
    """Fail fast on a ``HOST:PORT`` that nothing answers, or that answers but is not Ray (Ray
    itself retries for minutes). Ray's head and client ports speak gRPC, that is HTTP/2: sent the
    HTTP/2 connection preface, a gRPC server answers with a SETTINGS frame (type 4).

    Raises:
        ValueError: for an address that is not ``HOST:PORT``.
        QRNNError: when nothing accepts a connection there within 5 seconds, or what does is not gRPC.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be 'auto' or 'HOST:PORT' of a Ray head node, got {address!r}.")
    hint = "start one with `ray start --head` or leave address out for a local instance."
    try:
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(_HTTP2_PREFACE)
            conn.settimeout(5)
            answer = conn.recv(64)
    except TimeoutError:
        answer = None
    except OSError as exc:
        raise QRNNError(f"Could not reach the Ray cluster at address {address!r} ({exc}); {hint}") from None
    if answer is None or len(answer) < 9 or answer[3] != 4:
        heard = "nothing within 5 s" if not answer else repr(answer[:40])
        raise QRNNError(f"The service at address {address!r} does not answer as a Ray cluster does (gRPC over "
                        f"HTTP/2; it answered {heard}). Give the head node's address (`ray start --head` prints "
                        f"it), or {hint.split(' or ')[1]}")


#: the HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113, section 3.4)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
