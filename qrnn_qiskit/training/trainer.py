"""Training on the exact engine (or on Aer shots) with the reference implementation's loop.

One step draws one random batch (with replacement; per class for classification sets), computes
the reference loss and its gradient, clips the gradient norm at 0.5 and takes an optimiser step.
Every ``validate_every`` steps one validation batch gives the validation loss and the character
error rate (sampled, as at test time). :func:`fit` is that plain loop over a :class:`TrainState`;
writing the run folder, the console output and anything else are callbacks
(:mod:`qrnn_qiskit.training.callbacks`).

A :class:`TrainState` round-trips through a checkpoint (parameters, optimiser moments, both random
generators, the step counter, the best loss, the time spent), so an interrupted run continues the
identical trajectory with :func:`resume`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.models import make_engine
from qrnn_qiskit.training.callbacks import (
    Callback,
    CheckpointWriter,
    ConsoleProgress,
    MetricsWriter,
    ShowSamples,
    TensorBoardWriter,
)
from qrnn_qiskit.training.checkpoint import Checkpoint, load_checkpoint
from qrnn_qiskit.training.datasets import Dataset, SequenceBatch
from qrnn_qiskit.training.evaluate import evaluate_exact
from qrnn_qiskit.training.optim import Optimizer, clip_grad_norm, make_optimizer
from qrnn_qiskit.training.settings import TrainSettings

__all__ = ["TrainSettings", "TrainState", "train", "resume", "fit", "fixed_validation_set"]

GRAD_CLIP = 0.5
logger = logging.getLogger("qrnn_qiskit")


@dataclass
class TrainState:
    """Everything that changes during a run; :meth:`to_checkpoint` and :meth:`from_checkpoint`
    round-trip it. ``dataset`` is rebuilt from the settings, not stored."""

    settings: TrainSettings
    config: QRNNConfig
    dataset: Dataset
    parameters: np.ndarray
    optimizer: Optimizer
    rng: np.random.Generator
    validation_rng: np.random.Generator
    step: int = 0
    best: float = math.inf
    seconds_before: float = 0.0
    last_loss: float = math.nan
    stopped: str | None = None
    stop: bool = False  # a callback sets it to end the run after the current step
    resumed_from: dict | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        """Seconds of training so far, earlier pieces of a resumed run included."""
        return self.seconds_before + time.perf_counter() - self.started

    @classmethod
    def initial(cls, settings: TrainSettings, dataset: Dataset) -> TrainState:
        state = cls._blank(settings, dataset)
        state.parameters = state.config.initial_parameters(
            bias_spread=settings.initial_bias_spread, weights_spread=settings.initial_weights_spread,
            unitaries_spread=settings.initial_unitaries_spread, seed=state.rng,
        )
        if settings.init is not None:  # drawn above all the same, so the random streams do not depend on it
            state.parameters = _initial_from(settings.init, state.config)
        return state

    @classmethod
    def _blank(cls, settings: TrainSettings, dataset: Dataset) -> TrainState:
        """Model, optimiser and random streams of ``settings``; parameters not drawn yet."""
        config = settings.model_config(dataset.input_width)
        optimizer = make_optimizer(settings.optimizer, config.num_parameters, settings.learning_rate, settings.weight_decay)
        # validation draws from its own stream, so when and how often it runs never changes training
        return cls(settings, config, dataset, np.zeros(config.num_parameters), optimizer,
                   np.random.default_rng(settings.seed), np.random.default_rng([settings.seed, 1]))

    def to_checkpoint(self, kind: str, validation: dict | None = None) -> Checkpoint:
        meta = {
            "dataset": self.settings.dataset,
            "settings": self.settings.to_dict(),
            "step": self.step,
            "seconds": self.seconds,
            "rng_state": self.rng.bit_generator.state,
            "validation_rng_state": self.validation_rng.bit_generator.state,
            "best_validation_loss": self.best,
            "kind": kind,
        }
        if validation:
            meta["validation"] = validation
        state = {f"optimizer/{k}": v for k, v in self.optimizer.state.items()}
        return Checkpoint(config=self.config, parameters=self.parameters, meta=meta, state=state)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, settings: TrainSettings, dataset: Dataset) -> TrainState:
        """The state a checkpoint of :meth:`to_checkpoint` holds, continued under ``settings``.

        Raises:
            ValueError: when the settings describe another model than the checkpoint's.
        """
        state = cls._blank(settings, dataset)
        meta = checkpoint.meta
        if checkpoint.config != state.config:
            raise ValueError(f"The checkpoint's model {checkpoint.config} differs from the settings' {state.config}.")
        state.parameters = checkpoint.parameters.copy()
        state.optimizer.load_state(
            {k[len("optimizer/"):]: v for k, v in checkpoint.state.items() if k.startswith("optimizer/")}
        )
        state.rng.bit_generator.state = meta["rng_state"]
        state.validation_rng.bit_generator.state = meta["validation_rng_state"]
        state.step = int(meta["step"])
        state.best = float(meta.get("best_validation_loss", math.inf))
        state.seconds_before = float(meta.get("seconds", 0.0))
        state.resumed_from = {"step": state.step, "settings": meta["settings"]}
        if meta["settings"].get("validation_size") != settings.validation_size:
            state.best = math.inf  # another validation set: earlier losses are not comparable
        if meta["settings"].get("neuron_mode", "postselect") != settings.neuron_mode:
            state.best = math.inf  # another meaning of the same parameters: earlier losses are not comparable
        return state


class _Objective:
    """Loss and clipped gradient of a batch: the exact engine's, or ``gradient``'s (Aer shots).

    ``min_postselection`` is the smallest teacher-forced probability of the step's first
    evaluation (at the parameters the step starts from), for the metrics.
    """

    def __init__(self, config: QRNNConfig, scored: np.ndarray, gradient=None, engine: str = "cpu",
                 precision: str = "float64", neuron_mode: str = "postselect", loss: str = "reference") -> None:
        self.engine = make_engine(config, engine=engine, precision=precision, neuron_mode=neuron_mode)
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
        return loss, clip_grad_norm(grad, GRAD_CLIP)[0]


def _train_step(state: TrainState, objective: _Objective) -> None:
    optimizer = state.optimizer
    optimizer.lr = state.settings.learning_rate_after(state.step)
    objective.start(state.dataset.batch(state.settings.batch_size, state.rng, "train"))
    if optimizer.uses_closure:
        state.parameters, state.last_loss = optimizer.step_closure(state.parameters, objective)
    else:
        state.last_loss, grad = objective(state.parameters)
        state.parameters = optimizer.step(state.parameters, grad)
    state.step += 1


def _validate(state: TrainState, fixed: SequenceBatch | None, min_train: float) -> tuple[dict, SequenceBatch]:
    batch = fixed if fixed is not None else state.dataset.batch(state.settings.batch_size, state.validation_rng, "validate")
    settings = state.settings
    validation = evaluate_exact(state.config, state.parameters, state.dataset, batch=batch, seed=state.validation_rng,
                                engine=settings.engine, precision=settings.precision, neuron_mode=settings.neuron_mode,
                                loss=settings.loss)
    record = {
        "step": state.step,
        "loss": state.last_loss,
        "validation_loss": validation["loss"],
        "character_error_rate": validation["character_error_rate"],
        "min_postselection_probability": min(min_train, validation["min_postselection_probability"]),
        "seconds": round(state.seconds, 3),
    }
    return record, batch


def fit(state: TrainState, callbacks: Sequence[Callback] = (), *, objective=None) -> dict:
    """Train ``state`` in place until ``settings.steps``, a stop condition or Ctrl-C; returns the summary.

    Stops: ``stop_at_loss`` (a validation loss below it), ``timeout`` (seconds, earlier pieces
    counted), a callback setting ``state.stop``, or Ctrl-C; ``state.stopped`` names which. In the
    main thread Ctrl-C takes effect at the next step boundary (a second one at once), so the
    checkpoint it leaves resumes exactly; a KeyboardInterrupt raised by a callback also stops it.
    ``objective`` (``start(batch)``, ``__call__(params) -> (loss, clipped gradient)``,
    ``min_postselection``) replaces the exact engine's on the whole batch: Aer shots, or Ray
    workers; validation stays on the exact engine.
    """
    settings = state.settings
    if objective is None:
        objective = _Objective(state.config, state.dataset.scored(), engine=settings.engine, precision=settings.precision,
                               neuron_mode=settings.neuron_mode, loss=settings.loss)
    fixed = fixed_validation_set(state.dataset, settings)
    state.started, state.stopped = time.perf_counter(), "steps"
    for callback in callbacks:
        callback.on_train_start(state)
    try:
        with _interrupt_between_steps() as interrupted:
            _loop(state, objective, callbacks, fixed, interrupted)
        if state.stopped == "steps" and state.step < settings.steps:  # the loop left early: say why
            state.stopped = "interrupted" if interrupted.is_set() else "callback"
    except KeyboardInterrupt:  # a second Ctrl-C, or an interrupt outside the main thread
        state.stopped = "interrupted"
    seconds = state.seconds
    summary = {
        "best_validation_loss": state.best,
        "final_loss": state.last_loss,
        "steps": state.step,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(state.step, 1), 4),
        "stopped": state.stopped,
        "model": state.settings.model,
        "num_parameters": state.config.num_parameters,
    }
    for callback in callbacks:
        callback.on_train_end(state, summary)
    return summary


def _loop(state: TrainState, objective, callbacks, fixed, interrupted) -> None:
    """Steps, validations and stop conditions until one ends the run (sets ``state.stopped``)."""
    settings = state.settings
    while state.step < settings.steps and not state.stop and not interrupted.is_set():
        _train_step(state, objective)
        for callback in callbacks:
            callback.on_step(state)
        if state.step % settings.validate_every == 0 or state.step == settings.steps:
            record, batch = _validate(state, fixed, objective.min_postselection)
            improved = record["validation_loss"] < state.best
            if improved:
                state.best = record["validation_loss"]
            for callback in callbacks:
                callback.on_validation(state, record, improved, batch)
            if settings.stop_at_loss is not None and record["validation_loss"] < settings.stop_at_loss:
                state.stopped = "stop_at_loss"
                return
        if settings.timeout is not None and state.seconds > settings.timeout:
            state.stopped = "timeout"
            return


@contextlib.contextmanager
def _interrupt_between_steps():
    """Ctrl-C (SIGINT) sets the yielded event instead of raising mid-step, so the run stops at the
    next step boundary and its checkpoint resumes onto the uninterrupted trajectory; a second
    Ctrl-C raises at once. Outside the main thread (no signal handlers there) it changes nothing."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def fixed_validation_set(dataset: Dataset, settings: TrainSettings) -> SequenceBatch | None:
    """The fixed validation sequences of ``settings.validation_size`` (None: random batches)."""
    if settings.validation_size is None:
        return None
    pool = dataset.split("validate")
    total = pool.inputs.shape[0]
    if settings.validation_size == 0 or settings.validation_size >= total:
        return pool
    # its own stream: choosing the set never moves the training or validation-sampling streams
    pick = np.sort(np.random.default_rng([settings.seed, 2]).choice(total, settings.validation_size, replace=False))
    return SequenceBatch(pool.inputs[pick], pool.targets[pick], pool.labels[pick])


def train(
    settings: TrainSettings,
    out: str | Path = "runs/qrnn",
    *,
    test: bool = False,
    callbacks: Sequence[Callback] | None = None,
) -> dict:
    """Train a model into the run folder ``out``; returns the summary (best validation loss,
    steps, seconds, why it stopped, checkpoint paths, and with ``test`` the best checkpoint's test
    figures).

    The run folder (``config.json``, ``metrics.jsonl``, ``best.npz``, ``final.npz``, TensorBoard
    events with ``settings.tensorboard``) is always written; ``callbacks`` are added after those
    writers, and ``None`` means a progress bar and sample display on standard error
    (``[]`` for silence).

    Raises:
        ValueError: for invalid settings.
        DatasetError: when the dataset's files are missing or malformed.
    """
    settings.validate()
    dataset = settings.load_dataset()
    return _run(TrainState.initial(settings, dataset), Path(out), test, callbacks)


def resume(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    timeout: float | None = None,
    validation_size: int | None = None,
    workers: int | None = None,
    address: str | None = None,
    engine: str | None = None,
    precision: str | None = None,
    neuron_mode: str | None = None,
    test: bool = False,
    callbacks: Sequence[Callback] | None = None,
) -> dict:
    """Continue a run from its ``final.npz`` or ``best.npz`` (same trajectory unless overridden)
    into ``out`` (default: the checkpoint's folder).

    A new ``learning_rate`` holds from here on (schedule entries already passed are dropped). A
    new ``validation_size`` (0 for the whole split) changes only how the best checkpoint is
    chosen; the best loss so far is forgotten, since it was measured on other sequences. New
    ``workers``/``address`` move the run onto other Ray workers without changing its trajectory;
    a new ``engine`` path (cpu, numpy, gpu) changes it only by float rounding, ``precision`` by more;
    a new ``neuron_mode`` (``amplify:L``) continues training for what amplified circuits compute.

    Raises:
        ValueError: for a checkpoint that was not written by a training run.
    """
    ck = load_checkpoint(checkpoint)
    if "rng_state" not in ck.meta or "settings" not in ck.meta:
        raise ValueError(f"{checkpoint} was not written by a training run (qrnn train); it cannot be resumed.")
    settings = TrainSettings.from_dict(ck.meta["settings"])
    pairs = (("learning_rate", learning_rate), ("batch_size", batch_size), ("steps", steps), ("timeout", timeout),
             ("validation_size", validation_size), ("workers", workers), ("address", address), ("engine", engine),
             ("precision", precision), ("neuron_mode", neuron_mode))
    overrides = {k: v for k, v in pairs if v is not None}
    if learning_rate is not None and settings.lr_schedule:
        overrides["lr_schedule"] = [entry for entry in settings.lr_schedule if entry[0] > int(ck.meta["step"])] or None
    settings = replace(settings, **overrides)
    settings.validate()
    state = TrainState.from_checkpoint(ck, settings, settings.load_dataset())
    return _run(state, Path(out) if out is not None else Path(checkpoint).parent, test, callbacks)


def _run(state: TrainState, out: Path, test: bool, callbacks: Sequence[Callback] | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    writers: list[Callback] = [CheckpointWriter(out), MetricsWriter(out)]
    if state.settings.tensorboard:
        writers.append(TensorBoardWriter(out))
    extra = [ConsoleProgress(), ShowSamples()] if callbacks is None else list(callbacks)
    objective = _objective(state)
    try:
        summary = fit(state, writers + extra, objective=objective)
    finally:  # Ctrl-C and failures too: no Ray workers are left behind
        getattr(objective, "close", lambda: None)()
    summary.update({"checkpoints": {"best": str(out / "best.npz"), "final": str(out / "final.npz")},
                    "out": str(out), "backend": state.settings.backend})
    if test:
        best = load_checkpoint(out / "best.npz")
        figures = evaluate_exact(best.config, best.parameters, state.dataset, split="test", seed=state.settings.seed,
                                 neuron_mode=state.settings.neuron_mode)
        summary.update({f"test_{k}": v for k, v in figures.items() if k not in ("dataset", "split")})
    return summary


def _initial_from(path: str, config) -> np.ndarray:
    """The parameters of the checkpoint at ``path``, which must hold the model ``config`` describes.

    Raises:
        ValueError: naming the fields that differ and the values to pass.
    """
    init = load_checkpoint(path)
    mine, theirs = config.to_dict(), init.config.to_dict()
    if mine != theirs:
        differ = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here"
                           for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
        raise ValueError(f"init checkpoint {path} holds another model ({differ}); pass the same model options "
                         "(--workspace, --stages, --order, --degree, --bias, --model, --hidden).")
    return np.array(init.parameters, dtype=float)


def _objective(state: TrainState):
    """The training objective the settings ask for: the exact engine in this process, on Ray
    workers (``workers > 1``), or gradients from Aer shots (``backend="aer"``)."""
    settings, scored = state.settings, state.dataset.scored()
    if settings.workers > 1:
        from qrnn_qiskit.training.distributed import DataParallelObjective

        return DataParallelObjective(state.config, scored, settings.workers, settings.address, GRAD_CLIP,
                                     engine=settings.engine, precision=settings.precision,
                                     neuron_mode=settings.neuron_mode)
    return _Objective(state.config, scored, _aer_gradient(state) if settings.backend == "aer" else None,
                      engine=settings.engine, precision=settings.precision, neuron_mode=settings.neuron_mode,
                      loss=settings.loss)


def _aer_gradient(state: TrainState):
    """The Aer gradient estimator, with its cost per step logged before the first step."""
    settings = state.settings
    from qrnn_qiskit.runners.aer import AerRunner
    from qrnn_qiskit.runners.aer_training import AerGradient

    runner = AerRunner(shots=settings.shots, seed=settings.seed, device=settings.device)
    estimator = AerGradient(state.config, runner, settings.gradient, seed=settings.seed)
    inputs, targets = state.dataset.batch(settings.batch_size, np.random.default_rng(0)).engine_arrays()
    rows = estimator.evaluations_per_step(inputs.shape[1]) * inputs.shape[0]
    seconds = estimator.estimate_seconds(inputs, targets)
    logger.info(
        "aer %s: %d circuit rows x %d shots = %s shots per step, about %.1f s per step (%.1f min for %d steps)",
        settings.gradient, rows, settings.shots, f"{rows * settings.shots:,}", seconds,
        seconds * settings.steps / 60, settings.steps,
    )
    return estimator
