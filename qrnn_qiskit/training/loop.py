"""The training loop, with the reference implementation's steps.

One step draws one random batch (with replacement; per class for classification sets), computes
the loss and its gradient through an *objective*, clips the gradient's norm (at ``grad_clip``, 0.5
as the reference) and takes an optimiser step. Every ``validate_every`` steps one validation batch gives the validation loss and
the character error rate (sampled, as at test time). :func:`fit` is that plain loop over a
:class:`~qrnn_qiskit.training.state.TrainState`; writing the run folder, the console output and
anything else are callbacks (:mod:`qrnn_qiskit.training.callbacks`).

An objective has ``start(batch)``, ``__call__(params) -> (loss, clipped gradient)``,
``min_postselection`` (the smallest teacher-forced probability of the step's first evaluation)
and optionally ``close()``. :class:`ExactObjective` is the exact engine in this process; the
Ray workers' (:mod:`~qrnn_qiskit.training.distributed`) and Aer's (composed in
:mod:`qrnn_qiskit.workflows.train`) follow the same protocol.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from qrnn_qiskit.data.base import Dataset, SequenceBatch
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.registry import make_engine
from qrnn_qiskit.training.callbacks import Callback
from qrnn_qiskit.training.optim import clip_grad_norm
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.training.state import TrainState

__all__ = ["GRAD_CLIP", "ExactObjective", "Objective", "fit", "fixed_validation_set"]

#: the reference clips every gradient to this norm
GRAD_CLIP = 0.5


class Objective(Protocol):
    """What the loop minimises (see the module)."""

    min_postselection: float | None

    def start(self, batch: SequenceBatch) -> None: ...

    def __call__(self, values: np.ndarray) -> tuple[float, np.ndarray]: ...


class ExactObjective:
    """Loss and clipped gradient of a batch: the exact engine's, or ``gradient``'s, a function
    ``(params, inputs, targets, scored) -> (loss, gradient)`` (say, one estimated from Aer shots).
    The gradient is scaled to norm ``clip`` when longer (0: never).

    ``min_postselection`` is the smallest teacher-forced probability of the step's first
    evaluation (at the parameters the step starts from), for the metrics.
    """

    def __init__(self, config, scored: np.ndarray, gradient: Callable | None = None, engine: str | EngineSpec = "cpu",
                 loss: str = "reference", clip: float = GRAD_CLIP) -> None:
        self.engine = make_engine(config, engine=engine)
        self.clip = clip
        self.scored, self.gradient = scored, gradient
        self.loss_kind = {} if loss == "reference" else {"loss": loss}  # another loss: classical models only
        self.inputs = self.targets = None
        self.min_postselection: float | None = None

    def start(self, batch: SequenceBatch) -> None:
        self.inputs, self.targets = batch.engine_arrays()
        self.min_postselection = None

    def __call__(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        if self.gradient is not None:
            loss, grad = self.gradient(values, self.inputs, self.targets, self.scored)
            minimum = 1.0
        else:
            loss, grad, result = self.engine.loss_and_gradient(values, self.inputs, self.targets, self.scored,
                                                               **self.loss_kind)
            minimum = result.min_postselection_probability
        if self.min_postselection is None:
            self.min_postselection = minimum
        return loss, clip_grad_norm(grad, self.clip)[0]


def exact_objective(state: TrainState, gradient: Callable | None = None) -> ExactObjective:
    """The exact engine's objective for ``state``'s model and settings."""
    return ExactObjective(state.config, state.dataset.scored(), gradient, engine=state.engine_spec,
                          loss=state.settings.optimizer.loss, clip=state.settings.optimizer.grad_clip)


class _Diverged(Exception):
    """The loss, the gradient or the parameters became NaN or infinite during a step."""


def _finite(objective: Objective) -> Callable:
    """``objective`` as a function that raises :class:`_Diverged` instead of returning (or being
    called with) non-finite numbers."""

    def call(values: np.ndarray) -> tuple[float, np.ndarray]:
        if not np.all(np.isfinite(values)):
            raise _Diverged("parameters")
        loss, grad = objective(values)
        if not math.isfinite(loss):
            raise _Diverged(f"loss {loss}")
        if not np.all(np.isfinite(grad)):
            raise _Diverged("gradient")
        return loss, grad

    return call


def _optimizer_step(state: TrainState, optimizer, objective: Callable) -> tuple[np.ndarray, float]:
    if optimizer.uses_closure:
        return optimizer.step_closure(state.parameters, objective)
    loss, grad = objective(state.parameters)
    return optimizer.step(state.parameters, grad), loss


def _train_step(state: TrainState, objective: Objective) -> None:
    """One optimiser step; on divergence the state is put back as it was before it (the last
    finite parameters, moments and random streams) and the run stops (``stopped="diverged"``)."""
    optimizer = state.optimizer
    before = (state.parameters.copy(), {k: v.copy() for k, v in optimizer.state.items()}, state.rng.bit_generator.state,
              state.last_loss)
    objective.start(state.dataset.batch(state.settings.data.batch_size, state.rng, "train"))
    finite = _finite(objective)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing step is caught below, not warned of
            parameters, loss = _optimizer_step(state, optimizer, finite)
        if not np.all(np.isfinite(parameters)):
            raise _Diverged("parameters")
    except _Diverged as exc:
        state.parameters, moments, state.rng.bit_generator.state, state.last_loss = before
        optimizer.load_state(moments)
        state.stopped = "diverged"
        state.diverged = {"step": state.step + 1, "what": str(exc)}
        return
    state.parameters, state.last_loss = parameters, loss
    state.step += 1


def _validate(state: TrainState, fixed: SequenceBatch | None, min_train: float) -> tuple[dict, SequenceBatch]:
    settings = state.settings
    batch = fixed if fixed is not None else state.dataset.batch(settings.data.batch_size, state.validation_rng,
                                                                "validate")
    validation = evaluate_exact(state.config, state.parameters, state.dataset, batch=batch, seed=state.validation_rng,
                                engine=state.engine_spec, loss=settings.optimizer.loss)
    record = {
        "step": state.step,
        "loss": state.last_loss,
        "validation_loss": validation["loss"],
        "character_error_rate": validation["character_error_rate"],
        "min_postselection_probability": min(min_train, validation["min_postselection_probability"]),
        "seconds": round(state.seconds, 3),
    }
    return record, batch


def fit(state: TrainState, callbacks: Sequence[Callback] = (), *, objective: Objective | None = None) -> dict:
    """Train ``state`` in place until ``steps``, a stop condition or Ctrl-C; returns the summary.

    Stops: ``stop_at_loss`` (a validation loss below it), ``timeout`` (seconds, earlier pieces
    counted), a callback setting ``state.stop``, Ctrl-C or SIGTERM, or divergence (a NaN or infinite
    loss, gradient or parameter: the state is put back to the step before, and the summary names
    the step, ``diverged_at_step``); ``state.stopped`` names which. In the
    main thread Ctrl-C takes effect at the next step boundary (a second one at once), so the
    checkpoint it leaves resumes exactly; a KeyboardInterrupt raised by a callback also stops it.
    ``objective`` replaces the exact engine's on the whole batch (Aer shots, Ray workers);
    validation stays on the exact engine.
    """
    objective = objective if objective is not None else exact_objective(state)
    fixed = fixed_validation_set(state.dataset, state.settings)
    state.started, state.stopped = time.perf_counter(), "steps"
    for callback in callbacks:
        callback.on_train_start(state)
    try:
        with _interrupt_between_steps() as interrupted:
            _loop(state, objective, callbacks, fixed, interrupted)
        if state.stopped == "steps" and state.step < state.settings.run.steps:  # the loop left early: say why
            state.stopped = interrupted.reason if interrupted.is_set() else "callback"
    except KeyboardInterrupt:  # a second Ctrl-C, or an interrupt outside the main thread
        state.stopped = "interrupted"
    summary = _summary(state)
    for callback in callbacks:
        callback.on_train_end(state, summary)
    return summary


def _summary(state: TrainState) -> dict:
    seconds = state.seconds
    return {
        "best_validation_loss": state.best,
        "final_loss": state.last_loss,
        "steps": state.step,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(state.step, 1), 4),
        "stopped": state.stopped,
        **({"diverged_at_step": state.diverged["step"], "diverged": state.diverged["what"]} if state.diverged else {}),
        "model": state.settings.model.kind,
        "num_parameters": state.config.num_parameters,
    }


def _loop(state: TrainState, objective: Objective, callbacks, fixed, interrupted) -> None:
    """Steps, validations and stop conditions until one ends the run (sets ``state.stopped``)."""
    run = state.settings.run
    while state.step < run.steps and not state.stop and not interrupted.is_set():
        _train_step(state, objective)
        if state.stopped == "diverged":
            return
        for callback in callbacks:
            callback.on_step(state)
        if state.step % run.validate_every == 0 or state.step == run.steps:
            record, batch = _validate(state, fixed, objective.min_postselection)
            improved = record["validation_loss"] < state.best
            if improved:
                state.best = record["validation_loss"]
            for callback in callbacks:
                callback.on_validation(state, record, improved, batch)
            if run.stop_at_loss is not None and record["validation_loss"] < run.stop_at_loss:
                state.stopped = "stop_at_loss"
                return
        if run.timeout is not None and state.seconds > run.timeout:
            state.stopped = "timeout"
            return


@contextlib.contextmanager
def _interrupt_between_steps():
    """Ctrl-C (SIGINT) and SIGTERM (what cluster schedulers send) set the yielded event instead of
    raising mid-step, so the run stops at the next step boundary (``reason``: ``interrupted`` or
    ``terminated``) and its checkpoint resumes onto the uninterrupted trajectory; a second signal
    raises at once. Outside the main thread (no signal handlers there) it changes nothing."""
    event = threading.Event()
    event.reason = "interrupted"
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.reason = "terminated" if signum == signal.SIGTERM else "interrupted"
        event.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def fixed_validation_set(dataset: Dataset, settings: TrainSettings) -> SequenceBatch | None:
    """The fixed validation sequences of ``validation_size`` (None: random batches)."""
    size = settings.data.validation_size
    if size is None:
        return None
    pool = dataset.split("validate")
    total = pool.inputs.shape[0]
    if size == 0 or size >= total:
        return pool
    # its own stream: choosing the set never moves the training or validation-sampling streams
    pick = np.sort(np.random.default_rng([settings.run.seed, 2]).choice(total, size, replace=False))
    return SequenceBatch(pool.inputs[pick], pool.targets[pick], pool.labels[pick])
