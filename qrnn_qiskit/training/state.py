"""Everything that changes during a run, in one :class:`TrainState` that round-trips through a
checkpoint (parameters, optimiser moments, both random generators, the step counter, the best
loss, the time spent), so an interrupted run continues the identical trajectory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from qrnn_qiskit.circuits.noise import resolve_noise
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.data.base import Dataset
from qrnn_qiskit.engine.backends.density import ROW_BLOCK
from qrnn_qiskit.engine.memory import check_memory
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.models.checkpoint import Checkpoint, load_checkpoint
from qrnn_qiskit.training.optim import Optimizer, make_optimizer
from qrnn_qiskit.training.settings import TrainSettings

__all__ = ["TrainState", "initial_parameters_from"]


@dataclass
class TrainState:
    """Everything that changes during a run; :meth:`to_checkpoint` and :meth:`from_checkpoint`
    round-trip it. ``dataset`` is rebuilt from the settings, not stored."""

    settings: TrainSettings
    config: object  # a QRNNConfig or a ClassicalConfig
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
    diverged: dict | None = None  # {"step": the step that diverged, "what": what became non-finite}
    noise: NoiseSpec | None = None  # the run's noise, resolved for its model (from a backend: read once)
    started: float = field(default_factory=time.perf_counter)

    @property
    def engine_spec(self) -> EngineSpec:
        """What the exact engine computes for this run: path, precision, neuron mode, unscored, noise."""
        return self.settings.run.engine_spec(self.noise)

    @property
    def seconds(self) -> float:
        """Seconds of training so far, earlier pieces of a resumed run included."""
        return self.seconds_before + time.perf_counter() - self.started

    @classmethod
    def initial(cls, settings: TrainSettings, dataset: Dataset) -> TrainState:
        """A run's start: parameters drawn as the reference draws them, or read from ``init``."""
        state = cls._blank(settings, dataset)
        model = settings.model
        state.parameters = state.config.initial_parameters(
            bias_spread=model.initial_bias_spread, weights_spread=model.initial_weights_spread,
            unitaries_spread=model.initial_unitaries_spread, seed=state.rng,
        )
        if model.init is not None:  # drawn above all the same, so the random streams do not depend on it
            state.parameters = initial_parameters_from(model.init, state.config)
        state.noise = state.resolved_noise()
        return state

    def resolved_noise(self) -> NoiseSpec | None:
        """The settings' noise for this model (rates, or read from a backend's reported errors)."""
        run = self.settings.run
        if run.noise is None or not isinstance(self.config, QRNNConfig):
            return None
        return resolve_noise(run.noise, self.config, neuron_mode=run.neuron_mode)

    @classmethod
    def _blank(cls, settings: TrainSettings, dataset: Dataset) -> TrainState:
        """Model, optimiser and random streams of ``settings``; parameters not drawn yet."""
        config = settings.model.config(dataset.input_width)
        if isinstance(config, QRNNConfig):  # refused before anything of that size is allocated
            spec = settings.run.engine_spec()
            rows = settings.data.batch_size * max(1, dataset.num_classes)  # per class for classification sets
            check_memory(config, rows, dataset.sequence_length - 1, density=spec.mixed,
                         complex_amplitudes=spec.complex_amplitudes, block=ROW_BLOCK, path=spec.backend,
                         options="--batch-size, the model (--workspace, --stages) or the sequence length")
        opt = settings.optimizer
        optimizer = make_optimizer(opt.optimizer, config.num_parameters, opt.schedule, opt.weight_decay)
        # validation draws from its own stream, so when and how often it runs never changes training
        seed = settings.run.seed
        return cls(settings, config, dataset, np.zeros(config.num_parameters), optimizer,
                   np.random.default_rng(seed), np.random.default_rng([seed, 1]))

    def to_checkpoint(self, kind: str, validation: dict | None = None) -> Checkpoint:
        meta = {
            "dataset": self.settings.data.dataset,
            "settings": self.settings.to_dict(),
            "step": self.step,
            "seconds": self.seconds,
            "rng_state": self.rng.bit_generator.state,
            "validation_rng_state": self.validation_rng.bit_generator.state,
            "best_validation_loss": self.best,
            "kind": kind,
            "noise": None if self.noise is None else self.noise.to_dict(),
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
        try:
            state.optimizer.load_state(
                {k[len("optimizer/"):]: v for k, v in checkpoint.state.items() if k.startswith("optimizer/")}
            )
        except ValueError as exc:  # a damaged file, not a bad option
            raise CheckpointError(f"The checkpoint's optimiser state cannot be resumed: {exc}") from None
        for name, rng in (("rng_state", state.rng), ("validation_rng_state", state.validation_rng)):
            try:
                rng.bit_generator.state = meta[name]
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"The checkpoint's meta field {name!r} is not a {type(rng.bit_generator).__name__} "
                                      f"state ({exc!r:.80}); it cannot be resumed exactly.") from None
        state.step = int(meta["step"])
        state.best = float(meta.get("best_validation_loss", math.inf))
        state.seconds_before = float(meta.get("seconds", 0.0))
        state.resumed_from = {"step": state.step, "settings": meta["settings"]}
        earlier = meta["settings"]
        if earlier.get("validation_size") != settings.data.validation_size:
            state.best = math.inf  # another validation set: earlier losses are not comparable
        same_noise = earlier.get("noise") == settings.run.noise
        stored = meta.get("noise")
        state.noise = (NoiseSpec.from_dict(stored) if isinstance(stored, dict) else None) if same_noise \
            else state.resolved_noise()  # the figures the run trained under, not read again
        for name, default in (("neuron_mode", "postselect"), ("unscored", "postselect"), ("noise", None)):
            if earlier.get(name, default) != getattr(settings.run, name):
                state.best = math.inf  # another meaning of the same parameters: earlier losses are not comparable
        return state


def initial_parameters_from(path: str, config) -> np.ndarray:
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
