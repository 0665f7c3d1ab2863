"""Training on the exact engine with the reference implementation's loop.

One step draws one random batch (with replacement; per class for classification sets), computes
the reference loss and its exact gradient, clips the gradient norm at 0.5 and takes an optimiser
step. Every ``validate_every`` steps one validation batch gives the validation loss and the
character error rate (sampled, as at test time); the checkpoint with the best validation loss is
kept as ``best.npz`` beside ``final.npz``. A run folder holds ``config.json`` (resolved settings
and argv), ``metrics.jsonl`` (one JSON object per validation) and the checkpoints.

Resuming restores parameters, optimiser moments, the random generator and the step counter, so
an interrupted run continues the identical trajectory.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..config import QRNNConfig
from ..engine import ExactEngine
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .datasets import SequenceBatch, get_dataset
from .evaluate import evaluate_exact
from .optim import OPTIMIZERS, clip_grad_norm, make_optimizer

__all__ = ["TrainSettings", "train", "resume"]

GRAD_CLIP = 0.5


@dataclass(frozen=True)
class TrainSettings:
    """Every setting of a training run (the reference's options, same defaults where it has them)."""

    dataset: str = "simple-seq"
    workspace: int = 3
    stages: int = 2
    order: int = 2
    degree: int = 2
    sentence_length: int = 20
    batch_size: int = 1
    optimizer: str = "adam"
    learning_rate: float = 0.003
    # piecewise-constant learning rate: [[step, lr], ...]; the update after `step` steps and every
    # later one uses `lr` (until the next entry). None: learning_rate throughout.
    lr_schedule: list | None = None
    weight_decay: float = 0.0
    initial_bias: float = math.pi / 2
    initial_bias_spread: float = 0.1
    initial_weights_spread: float = 0.01
    initial_unitaries_spread: float = 0.01
    steps: int = 5000
    seed: int = 82727
    validate_every: int = 10
    # None: one fresh random validation batch (batch_size per class) each time, as the reference
    # does. N >= 1: a fixed set of N validation sequences drawn once; 0: the whole split. A fixed
    # set makes validation losses comparable between steps, so "best" is not a lucky batch.
    validation_size: int | None = None
    stop_at_loss: float | None = None
    timeout: float | None = None
    data_dir: str | None = None
    tensorboard: bool = False
    argv: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; available: {', '.join(OPTIMIZERS)}.")
        for name in ("steps", "validate_every", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.lr_schedule is not None:
            object.__setattr__(self, "lr_schedule", _checked_schedule(self.lr_schedule))  # normalised pairs
        if self.validation_size is not None and (
            isinstance(self.validation_size, bool) or not isinstance(self.validation_size, int) or self.validation_size < 0
        ):
            raise ValueError(
                f"validation_size must be 0 (the whole validation split) or a positive number of sequences, "
                f"got {self.validation_size!r}."
            )
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}.")


def _checked_schedule(schedule) -> list[list]:
    """``[[step, lr], ...]`` with increasing steps >= 1 and positive rates, or a ValueError."""
    try:
        pairs = [[int(step), float(lr)] for step, lr in schedule]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lr_schedule must be a list of [step, learning_rate] pairs, got {schedule!r}.") from exc
    steps = [step for step, _ in pairs]
    if not pairs or steps != sorted(set(steps)) or steps[0] < 1 or any(not (lr > 0 and math.isfinite(lr)) for _, lr in pairs):
        raise ValueError(
            f"lr_schedule needs increasing steps >= 1 and positive learning rates, got {schedule!r} "
            "(on the command line: --lr-schedule 390:0.002,1000:0.001)."
        )
    return pairs


def _learning_rate(settings: TrainSettings, done: int) -> float:
    """The learning rate of the update that follows ``done`` completed steps."""
    rate = settings.learning_rate
    for step, lr in settings.lr_schedule or ():
        if done >= step:
            rate = lr
    return rate


def _model(settings: TrainSettings, input_width: int) -> QRNNConfig:
    return QRNNConfig(
        input_width=input_width,
        workspace=settings.workspace,
        stages=settings.stages,
        order=settings.order,
        degree=settings.degree,
        bias=settings.initial_bias,
    )


def _log(message: str) -> None:
    if sys.stderr.isatty():
        message = "\r\033[K" + message
    print(message, file=sys.stderr, flush=True)


def _progress(step: int, total: int, loss: float, seconds: float) -> None:
    """A one-line progress bar on a terminal; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * step / max(total, 1))
    rate = seconds / max(step, 1)
    print(
        f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {step}/{total}  loss {loss:.4f}  "
        f"{rate:.2f} s/step",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _show_samples(dataset, config: QRNNConfig, params: np.ndarray, batch, count: int = 2, seed=None) -> str:
    """A few validation sequences in human form with the model's sampled answers."""
    engine = ExactEngine(config)
    inputs, targets = batch.engine_arrays()
    picks = slice(0, min(count, inputs.shape[0]))
    result = engine.simulate(params, inputs[picks], targets[picks], sample=dataset.sampled(targets[picks]), seed=seed)
    scored = dataset.scored()
    lines = []
    for b in range(result.outcomes.shape[0]):
        want = targets[b, scored].tolist()
        got = result.outcomes[b, scored].tolist()
        p_right = float(np.prod(result.probabilities[b, scored, :][np.arange(scored.sum()), want]))
        lines.append(dataset.render(batch.inputs[b]))
        lines.append(f"  target {want}  sampled {got}  P(right) {p_right:.3f}  {'ok' if want == got else 'WRONG'}")
    return "\n".join(lines)


def train(
    settings: TrainSettings,
    out: str | Path,
    *,
    on_validation: Callable[[dict], None] | None = None,
    gradient: Callable | None = None,
    _resume_from: Checkpoint | None = None,
) -> dict:
    """Train a model; returns the summary (best validation loss, steps, seconds, checkpoint paths).

    ``gradient(params, inputs, targets, scored) -> (loss, grad)`` replaces the exact engine's
    gradient (for example :class:`qrnn_qiskit.runners.aer_training.AerGradient`); validation stays
    on the exact engine.

    Raises:
        ValueError: for invalid settings.
        DatasetError: when the dataset's files are missing or malformed.
    """
    settings.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = get_dataset(settings.dataset, sentence_length=settings.sentence_length, data_dir=settings.data_dir)
    config = _model(settings, dataset.input_width)
    engine = ExactEngine(config)
    optimizer = make_optimizer(settings.optimizer, config.num_parameters, settings.learning_rate, settings.weight_decay)
    rng = np.random.default_rng(settings.seed)

    def write_config() -> None:
        document = {"settings": asdict(settings), "model": config.to_dict(), "dataset": dataset.describe()}
        if _resume_from is not None:
            document["resumed_from"] = {"step": int(_resume_from.meta["step"]), "settings": _resume_from.meta["settings"]}
        atomic_write_text(out / "config.json", json.dumps(document, indent=1))

    # validation draws from its own stream, so when and how often it runs never changes training
    val_rng = np.random.default_rng([settings.seed, 1])
    if _resume_from is None:
        params = config.initial_parameters(
            bias_spread=settings.initial_bias_spread,
            weights_spread=settings.initial_weights_spread,
            unitaries_spread=settings.initial_unitaries_spread,
            seed=rng,
        )
        step = 0
        best = math.inf
        elapsed = 0.0
        write_config()
    else:
        ck = _resume_from
        if ck.config != config:
            raise ValueError(f"The checkpoint's model {ck.config} differs from the settings' {config}.")
        params = ck.parameters.copy()
        optimizer.load_state({k[len("optimizer/"):]: v for k, v in ck.state.items() if k.startswith("optimizer/")})
        rng.bit_generator.state = ck.meta["rng_state"]
        val_rng.bit_generator.state = ck.meta["validation_rng_state"]
        step = int(ck.meta["step"])
        best = float(ck.meta.get("best_validation_loss", math.inf))
        elapsed = float(ck.meta.get("seconds", 0.0))
        if not (out / "config.json").exists():  # resumed into a new folder
            write_config()
        if ck.meta.get("settings", {}).get("validation_size") != settings.validation_size:
            best = math.inf  # another validation set: earlier losses are not comparable
    fixed_validation = _fixed_validation_set(dataset, settings)
    scored = dataset.scored()
    writer = _tensorboard_writer(out) if settings.tensorboard else None
    metrics_path = out / "metrics.jsonl"
    paths = {"best": str(out / "best.npz"), "final": str(out / "final.npz")}
    start = time.perf_counter() - elapsed
    last_loss = math.nan
    last_shown = -1
    stop_reason = "steps"

    def checkpoint(kind: str, validation: dict | None) -> None:
        meta = {
            "dataset": settings.dataset,
            "settings": asdict(settings),
            "step": step,
            "seconds": time.perf_counter() - start,
            "rng_state": rng.bit_generator.state,
            "validation_rng_state": val_rng.bit_generator.state,
            "best_validation_loss": best,
            "kind": kind,
        }
        if validation:
            meta["validation"] = validation
        state = {f"optimizer/{k}": v for k, v in optimizer.state.items()}
        save_checkpoint(paths[kind], Checkpoint(config=config, parameters=params, meta=meta, state=state))

    try:
        while step < settings.steps:
            optimizer.lr = _learning_rate(settings, step)
            batch = dataset.batch(settings.batch_size, rng, "train")
            inputs, targets = batch.engine_arrays()
            results = []

            def closure(values: np.ndarray) -> tuple[float, np.ndarray]:
                if gradient is not None:  # e.g. estimated from shots on Aer
                    loss, grad = gradient(values, inputs, targets, scored)
                    results.append(None)
                else:
                    loss, grad, result = engine.loss_and_gradient(values, inputs, targets, scored)
                    results.append(result)
                return loss, clip_grad_norm(grad, GRAD_CLIP)[0]

            if optimizer.uses_closure:
                params, last_loss = optimizer.step_closure(params, closure)
            else:
                last_loss, grad = closure(params)
                params = optimizer.step(params, grad)
            result = results[0]
            step += 1
            _progress(step, settings.steps, last_loss, time.perf_counter() - start)
            if step % settings.validate_every == 0 or step == settings.steps:
                if fixed_validation is not None:
                    val_batch = fixed_validation
                else:
                    val_batch = dataset.batch(settings.batch_size, val_rng, "validate")
                validation = evaluate_exact(config, params, dataset, batch=val_batch, seed=val_rng)
                record = {
                    "step": step,
                    "loss": last_loss,
                    "validation_loss": validation["loss"],
                    "character_error_rate": validation["character_error_rate"],
                    "min_postselection_probability": min(
                        result.min_postselection_probability if result is not None else 1.0,
                        validation["min_postselection_probability"],
                    ),
                    "seconds": round(time.perf_counter() - start, 3),
                }
                with metrics_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                if writer is not None:
                    writer(record)
                improved = validation["loss"] < best
                if improved:
                    best = validation["loss"]
                    checkpoint("best", record)
                    if step - last_shown >= 100 or last_shown < 0:
                        last_shown = step
                        _log(_show_samples(dataset, config, params, val_batch, seed=step))
                _log(
                    f"step {step:5d}  loss {last_loss:.5f}  val {validation['loss']:.5f}  "
                    f"cer {validation['character_error_rate']:.3f}  {'*' if improved else ' '}  "
                    f"{record['seconds']:.1f}s"
                )
                if on_validation is not None:
                    on_validation(record)
                if settings.stop_at_loss is not None and validation["loss"] < settings.stop_at_loss:
                    stop_reason = "stop_at_loss"
                    break
            if settings.timeout is not None and time.perf_counter() - start > settings.timeout:
                stop_reason = "timeout"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        _log(f"interrupted at step {step}; writing {paths['final']}")
    checkpoint("final", None)
    seconds = time.perf_counter() - start
    return {
        "best_validation_loss": best,
        "final_loss": last_loss,
        "steps": step,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(step, 1), 4),
        "stopped": stop_reason,
        "checkpoints": paths,
        "out": str(out),
    }


def _fixed_validation_set(dataset, settings: TrainSettings) -> SequenceBatch | None:
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


def resume(
    checkpoint_path: str | Path,
    out: str | Path | None = None,
    *,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    steps: int | None = None,
    timeout: float | None = None,
    validation_size: int | None = None,
) -> dict:
    """Continue a run from its ``final.npz`` or ``best.npz`` (same trajectory unless overridden).

    A new ``validation_size`` (0 for the whole split) changes only how the best checkpoint is
    chosen; the best loss so far is forgotten, since it was measured on other sequences.
    """
    ck = load_checkpoint(checkpoint_path)
    if "rng_state" not in ck.meta or "settings" not in ck.meta:
        raise ValueError(f"{checkpoint_path} was not written by `qrnn train`; it cannot be resumed.")
    fields = dict(ck.meta["settings"])
    settings = TrainSettings(**fields)
    pairs = (
        ("learning_rate", learning_rate), ("batch_size", batch_size), ("steps", steps), ("timeout", timeout),
        ("validation_size", validation_size),
    )
    overrides = {k: v for k, v in pairs if v is not None}
    if learning_rate is not None and settings.lr_schedule:
        # a new rate holds from here on: drop the schedule entries already passed
        done = int(ck.meta["step"])
        overrides["lr_schedule"] = [entry for entry in settings.lr_schedule if entry[0] > done] or None
    settings = replace(settings, **overrides)
    out = Path(out) if out is not None else Path(checkpoint_path).parent
    return train(settings, out, _resume_from=ck)


def _tensorboard_writer(out: Path) -> Callable[[dict], None]:
    """Scalars of each validation record as TensorBoard event files under ``out/tensorboard``."""
    from .. import optionals

    optionals.require("tensorboard", "--tensorboard")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(out / "tensorboard"))

    def write(record: dict) -> None:
        values = [
            Summary.Value(tag=key, simple_value=float(value))
            for key, value in record.items()
            if key not in ("step", "seconds") and value is not None
        ]
        writer.add_event(Event(wall_time=time.time(), step=int(record["step"]), summary=Summary(value=values)))
        writer.flush()

    return write
