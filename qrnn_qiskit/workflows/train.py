"""``qrnn train`` and ``qrnn resume``: a run folder trained by the loop of
:mod:`qrnn_qiskit.training.loop`, on the objective the settings ask for: the exact engine in this
process, on Ray workers (``workers > 1``), or gradients estimated from Aer shots (``backend="aer"``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_gradient import AerGradient
from qrnn_qiskit.training.callbacks import (
    Callback,
    CheckpointWriter,
    ConsoleProgress,
    MetricsWriter,
    ShowSamples,
    TensorBoardWriter,
)
from qrnn_qiskit.training.distributed import DataParallelObjective
from qrnn_qiskit.training.loop import exact_objective, fit
from qrnn_qiskit.training.runfolder import checkpoints_in, newest_checkpoint, run_folder, trim_metrics
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.training.state import TrainState

__all__ = ["resume", "train"]

logger = logging.getLogger("qrnn_qiskit")


def train(settings: TrainSettings, out: str | Path = "runs/qrnn", *, overwrite: bool = False, test: bool = False,
          callbacks: Sequence[Callback] | None = None) -> dict:
    """Train a model into the run folder ``out``; returns the summary (best validation loss,
    steps, seconds, why it stopped, checkpoint paths, and with ``test`` the best checkpoint's test
    figures).

    The run folder (``config.json``, ``metrics.jsonl``, ``best.npz``, ``last.npz``, ``final.npz``,
    TensorBoard events with ``tensorboard``) is always written; ``callbacks`` are added after those
    writers, and ``None`` means a progress bar and sample display on standard error
    (``[]`` for silence). A folder with files in it is refused unless ``overwrite`` (its run
    files are replaced); a folder another process trains into is always refused.

    Raises:
        ValueError: for invalid settings.
        DatasetError: when the dataset's files are missing or malformed.
        RunFolderError: for a folder in use or not empty.
    """
    dataset = settings.load_dataset()
    return _run(TrainState.initial(settings, dataset), Path(out), test, callbacks, overwrite=overwrite)


def resume(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    timeout: float | None = None,
    stop_at_loss: float | None = None,
    validation_size: int | None = None,
    workers: int | None = None,
    address: str | None = None,
    engine: str | None = None,
    precision: str | None = None,
    neuron_mode: str | None = None,
    unscored: str | None = None,
    noise: str | None = None,
    test: bool = False,
    callbacks: Sequence[Callback] | None = None,
) -> dict:
    """Continue a run (same trajectory unless overridden) from ``checkpoint``: a run folder (its
    newest checkpoint of ``final.npz``, ``last.npz`` and ``best.npz``) or one of those files.

    It writes into the checkpoint's own folder (``out`` left out or the same), whose
    ``metrics.jsonl`` is cut back to the resumed step, or into a new, empty ``out`` (``overwrite``:
    one whose run files may be replaced), which starts with the earlier metrics up to that step.

    A new ``learning_rate`` holds from here on (schedule entries already passed are dropped). A
    new ``validation_size`` (0 for the whole split) changes only how the best checkpoint is
    chosen; the best loss so far is forgotten, since it was measured on other sequences. New
    ``workers``/``address`` move the run onto other Ray workers without changing its trajectory;
    a new ``engine`` path (cpu, numpy, gpu) changes it only by float rounding, ``precision`` by more;
    a new ``neuron_mode`` (``amplify:L``) continues training for what amplified circuits compute;
    a new ``unscored`` (``measure``) or ``noise`` continues it for what a device computes (fine-tuning).

    Raises:
        ValueError: for a checkpoint that was not written by a training run, or ``steps`` below the
            step it was written at.
        CheckpointError: for a missing or unreadable checkpoint (naming the folder's others).
        RunFolderError: for an ``out`` in use by another process, or holding another run.
    """
    checkpoint, ck = _resume_source(checkpoint)
    pairs = (("learning_rate", learning_rate), ("batch_size", batch_size), ("steps", steps), ("timeout", timeout),
             ("stop_at_loss", stop_at_loss),
             ("validation_size", validation_size), ("workers", workers), ("address", address), ("engine", engine),
             ("precision", precision), ("neuron_mode", neuron_mode), ("unscored", unscored), ("noise", noise))
    settings = _resumed_settings(checkpoint, ck, {k: v for k, v in pairs if v is not None})
    dataset = settings.load_dataset()
    try:
        state = TrainState.from_checkpoint(ck, settings, dataset)
    except (KeyError, TypeError, ValueError) as exc:  # resume changes no model: the file disagrees with itself
        raise CheckpointError(f"{checkpoint} cannot be resumed: {exc}") from None
    own = checkpoint.parent
    target = Path(out) if out is not None else own
    continuing = target.resolve() == own.resolve()
    return _run(state, target, test, callbacks, overwrite=overwrite, continuing=continuing, source=own)


def _resumed_settings(checkpoint: Path, ck, overrides: dict) -> TrainSettings:
    """The settings of the run ``ck`` continues, with ``overrides``."""
    if "rng_state" not in ck.meta or "settings" not in ck.meta:
        raise ValueError(f"{checkpoint} was not written by a training run (qrnn train); it cannot be resumed.")
    steps = overrides.get("steps")
    if steps is not None and steps < int(ck.meta["step"]):
        raise ValueError(f"steps (--steps) is the run's new total, and {checkpoint} is at step {ck.meta['step']}: "
                         f"got {steps}. Give a total of at least {ck.meta['step']}.")
    try:
        settings = TrainSettings.from_dict(ck.meta["settings"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint} holds training settings this version cannot use: {exc}") from None
    schedule = settings.optimizer.lr_schedule
    if overrides.get("learning_rate") is not None and schedule:
        overrides["lr_schedule"] = [entry for entry in schedule if entry[0] > int(ck.meta["step"])] or None
    return settings.replace(**overrides)


def _resume_source(checkpoint: str | Path):
    """The checkpoint file to resume from (a run folder's newest) and its contents."""
    path = Path(checkpoint)
    if path.is_dir():
        path, ck = newest_checkpoint(path)
        logger.info("resuming %s (step %s)", path, ck.meta.get("step"))
        return path, ck
    if not path.exists():
        others = checkpoints_in(path.parent) if path.parent.is_dir() else ""
        hint = f" {path.parent} holds {others}: `qrnn resume {path.parent}` continues from the newest." if others else ""
        raise CheckpointError(f"No checkpoint at {path}.{hint}")
    return path, load_checkpoint(path)


def _run(state: TrainState, out: Path, test: bool, callbacks: Sequence[Callback] | None, *, overwrite: bool = False,
         continuing: bool = False, source: Path | None = None) -> dict:
    with run_folder(out, overwrite=overwrite, continuing=continuing):
        # metrics first: a checkpoint at step s then always follows the metrics lines up to s
        writers: list[Callback] = [MetricsWriter(out), CheckpointWriter(out)]
        if state.settings.run.tensorboard:
            writers.append(TensorBoardWriter(out))
        extra = [ConsoleProgress(), ShowSamples()] if callbacks is None else list(callbacks)
        objective = _objective(state)
        if source is not None:  # no metrics line twice: the resumed step's successors go
            dropped = trim_metrics(source / "metrics.jsonl", out / "metrics.jsonl", state.step)
            if dropped:
                logger.info("metrics.jsonl: %d line(s) after step %d (or unreadable) dropped", dropped, state.step)
        try:
            summary = fit(state, writers + extra, objective=objective)
        finally:  # Ctrl-C and failures too: no Ray workers are left behind
            getattr(objective, "close", lambda: None)()
    summary.update({"checkpoints": {"best": str(out / "best.npz"), "last": str(out / "last.npz"),
                                    "final": str(out / "final.npz")},
                    "out": str(out), "backend": state.settings.run.backend})
    if test and (out / "best.npz").is_file():  # none: stopped (diverged, interrupted) before a validation
        best = load_checkpoint(out / "best.npz")
        figures = evaluate_exact(best.config, best.parameters, state.dataset, split="test", seed=state.settings.run.seed,
                                 engine=state.engine_spec)
        summary.update({f"test_{k}": v for k, v in figures.items() if k not in ("dataset", "split")})
    return summary


def _objective(state: TrainState):
    """The training objective the settings ask for: the exact engine in this process, on Ray
    workers (``workers > 1``), or gradients from Aer shots (``backend="aer"``)."""
    run = state.settings.run
    if run.workers > 1:
        return DataParallelObjective(state.config, state.dataset.scored(), run.workers, run.address,
                                     state.settings.optimizer.grad_clip,
                                     engine=state.engine_spec)
    return exact_objective(state, _aer_gradient(state) if run.backend == "aer" else None)


def _aer_gradient(state: TrainState) -> AerGradient:
    """The Aer gradient estimator, with its cost per step logged before the first step."""
    run = state.settings.run
    runner = AerRunner(shots=run.shots, seed=run.seed, device=run.device)
    estimator = AerGradient(state.config, runner, run.gradient, seed=run.seed)
    inputs, targets = state.dataset.batch(state.settings.data.batch_size, np.random.default_rng(0)).engine_arrays()
    rows = estimator.evaluations_per_step(inputs.shape[1]) * inputs.shape[0]
    seconds = estimator.estimate_seconds(inputs, targets)
    how = ("one density-matrix run a row, measurements deferred, shots drawn per step" if estimator.sampling == "per-step"
           else "every shot through the mid-circuit measurements")
    logger.info(
        "aer %s: %d circuit rows x %d shots (%s), about %.1f s per step (%.1f min for %d steps)",
        run.gradient, rows, run.shots, how, seconds, seconds * run.steps / 60, run.steps,
    )
    return estimator
