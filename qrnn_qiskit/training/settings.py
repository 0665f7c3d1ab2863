"""Every setting of a training run, in four groups, with its default, its help text and its flag.

* :class:`DataSettings`: what the model learns from (dataset, batches, validation set);
* :class:`ModelSettings`: what is trained (the QRNN's sizes, or a baseline) and how it starts;
* :class:`OptimizerSettings`: the loss, the optimiser and its learning-rate schedule;
* :class:`RunSettings`: how long, where and on what (engine, Aer, Ray workers).

:class:`TrainSettings` holds one of each. It is built from the flat names the command line uses
(``TrainSettings(dataset="mnist01", workspace=8, learning_rate=0.005)``), stored flat in
checkpoints and ``config.json`` (:meth:`TrainSettings.to_dict`), and read by group
(``settings.optimizer.learning_rate``). Each group checks its own values when it is made;
:class:`TrainSettings` checks what spans groups. The ``qrnn train`` options are generated from the
fields (``metadata`` holds the help text, the short flag and how the command line spells a value),
so this module is the one source of the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from qrnn_qiskit.circuits.noise import is_backend_name
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.noise import parse_noise
from qrnn_qiskit.data.base import Dataset, every_step_scored
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.data.userdata import is_user_dataset
from qrnn_qiskit.engine.spec import ENGINES, PRECISIONS, UNSCORED, EngineSpec
from qrnn_qiskit.models.classical import LOSSES, ClassicalConfig
from qrnn_qiskit.models.registry import MODELS
from qrnn_qiskit.training.optim import OPTIMIZERS, PiecewiseConstant, checked_schedule, parse_lr_schedule

__all__ = ["BACKENDS", "DEVICES", "GRADIENTS", "DataSettings", "ModelSettings", "OptimizerSettings", "RunSettings",
           "TrainSettings", "parse_lr_schedule"]

BACKENDS = ("exact", "aer")
GRADIENTS = ("param-shift", "spsa")
DEVICES = ("CPU", "GPU")


def _option(default, help: str, **cli):
    """A dataclass field whose metadata describes its command-line option."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return field(**factory, metadata={"help": help, **cli})


def _positive_ints(group, names) -> None:
    for name in names:
        value = getattr(group, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _positive_seconds(group, optional: dict) -> None:
    """Durations: finite positive numbers, or None where ``optional[name]`` (no limit)."""
    for name, may_be_none in optional.items():
        value = getattr(group, name)
        if value is None and may_be_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name} must be positive seconds, got {value!r}.")


def _at_most(group, limits: dict) -> None:
    """Size settings checked before anything is allocated."""
    for name, limit in limits.items():
        value = getattr(group, name)
        if value > limit:
            raise ValueError(f"{name} must be at most {limit:,}, got {value:,}.")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}; expected one of {', '.join(allowed)}.")


@dataclass(frozen=True)
class DataSettings:
    """What the model learns from."""

    dataset: str = _option("simple-seq", "dataset name (see qrnn datasets)")
    data_dir: str | None = _option(None, "folder of the reference MNIST csv.gz files", path=True)
    sentence_length: int = _option(20, "sequence length of the generated datasets")
    batch_size: int = _option(1, "sequences per step (per class for classification sets)")
    # None: one fresh random validation batch (batch_size per class) each time, as the reference
    # does. N >= 1: a fixed set of N validation sequences drawn once; 0: the whole split. A fixed
    # set makes validation losses comparable between steps, so "best" is not a lucky batch.
    validation_size: int | None = _option(
        None, "validate on a fixed set of N validation sequences (0: the whole split) instead of a fresh "
        "random batch each time (the reference's way)", type=int,
    )
    # The paper's classical DNA baselines were trained with a loss on every step (its notebooks),
    # the QRNN on the last step only; this puts a model of either kind on the baselines' footing.
    score_all_steps: bool = _option(False, "put every step's prediction in the loss and the validation figures, not just "
                                    "the dataset's scored steps (as the paper trained its DNA baselines)")

    def __post_init__(self) -> None:
        _positive_ints(self, ("sentence_length", "batch_size"))
        _at_most(self, {"sentence_length": 100_000, "batch_size": 1_000_000})
        if is_user_dataset(self.dataset) and Path(self.dataset).exists():  # stored resolved: eval from elsewhere finds it
            object.__setattr__(self, "dataset", str(Path(self.dataset).resolve()))
        size = self.validation_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"validation_size must be 0 (the whole validation split) or a positive number of sequences, "
                             f"got {size!r}.")

    def load(self) -> Dataset:
        """The dataset these settings name (every step scored with ``score_all_steps``)."""
        dataset = get_dataset(self.dataset, sentence_length=self.sentence_length, data_dir=self.data_dir)
        return every_step_scored(dataset) if self.score_all_steps else dataset


@dataclass(frozen=True)
class ModelSettings:
    """What is trained, and where its parameters start. ``kind`` is the command line's ``--model``."""

    kind: str = _option("qrnn", "what to train: the QRNN, or a classical baseline of --hidden units (torch extra)",
                        choices=MODELS, flat="model")
    hidden: int = _option(10, "hidden units of the lstm or rnn baseline")
    workspace: int = _option(3, "workspace lanes W (the recurrent state)", short="-W")
    stages: int = _option(2, "work stages S", short="-S")
    order: int = _option(2, "neuron order k (nesting depth; k ancillas)", short="-k")
    degree: int = _option(2, "neuron degree d (largest weighted source subset)", short="-d")
    bias: float = _option(math.pi / 2, "the fixed, untrained offset of every neuron's angle", aliases=("--initial-bias",))
    initial_bias_spread: float = _option(0.1, "standard deviation of the initial trainable biases")
    initial_weights_spread: float = _option(0.01, "standard deviation of the initial subset weights")
    initial_unitaries_spread: float = _option(0.01, "standard deviation of the initial work-stage RY angles")
    init: str | None = _option(None, "start from the parameters of this checkpoint (same model), e.g. to fine-tune a "
                               "postselect-trained model under --neuron-mode amplify:L", file=True)

    def __post_init__(self) -> None:
        _choice("model", self.kind, MODELS)
        _positive_ints(self, ("hidden",))
        _at_most(self, {"hidden": 4096})

    def config(self, input_width: int):
        """The model on a dataset of ``input_width``-bit tokens: a :class:`QRNNConfig`, or a
        :class:`~qrnn_qiskit.models.classical.ClassicalConfig` for lstm/rnn."""
        if self.kind != "qrnn":
            return ClassicalConfig(kind=self.kind, hidden=self.hidden, input_width=input_width)
        return QRNNConfig(input_width=input_width, workspace=self.workspace, stages=self.stages, order=self.order,
                          degree=self.degree, bias=self.bias)


@dataclass(frozen=True)
class OptimizerSettings:
    """The loss and how it is minimised."""

    optimizer: str = _option("adam", "optimiser (as torch.optim: AdamW, SGD, RMSprop, L-BFGS)", choices=OPTIMIZERS)
    learning_rate: float = _option(0.003, "learning rate")
    # piecewise-constant learning rate: [[step, lr], ...]; the update after `step` steps and every
    # later one uses `lr` (until the next entry). None: learning_rate throughout.
    lr_schedule: list | None = _option(
        None, "later learning rates as STEP:LR[,STEP:LR...]: from STEP completed steps on, use LR",
        parse=parse_lr_schedule, metavar="STEP:LR,...",
    )
    weight_decay: float = _option(0.0, "decoupled weight decay (AdamW)")
    # The reference clips at 0.5 inside its closure, except in its main.py of 2020-06-17..20, which
    # trained its saved mnist36 L-BFGS models (docs/reference-training.md): 0 reproduces those.
    grad_clip: float = _option(0.5, "clip the gradient to this norm before the optimiser sees it (0: no clipping)")
    loss: str = _option("reference", "training and validation loss: reference (the paper's: cross-entropy of the outcome "
                        "probabilities used as logits, minus its offset) or cross-entropy (-log p[target], the usual loss "
                        "of a classical network's logits; lstm/rnn only)", choices=LOSSES)

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss", self.loss, LOSSES)
        if isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float)) or not self.grad_clip >= 0:
            raise ValueError(f"grad_clip must be a norm >= 0 (0 turns clipping off), got {self.grad_clip!r}.")
        if self.lr_schedule is not None:
            object.__setattr__(self, "lr_schedule", checked_schedule(self.lr_schedule))  # normalised pairs

    @property
    def schedule(self) -> PiecewiseConstant:
        """The learning rate as a function of the number of completed steps."""
        return PiecewiseConstant(self.learning_rate, self.lr_schedule or ())


@dataclass(frozen=True)
class RunSettings:
    """How long the run lasts, what it computes on, and where."""

    steps: int = _option(5000, "training steps in all")
    seed: int = _option(82727, "seed of initialisation, batches and sampling")
    validate_every: int = _option(10, "steps between validations (and best-checkpoint updates)")
    stop_at_loss: float | None = _option(None, "stop once the validation loss falls below this", type=float)
    timeout: float | None = _option(None, "stop after this many seconds (a resumed run counts its earlier time)", type=float)
    checkpoint_every: int = _option(100, "write last.npz, a resumable checkpoint, every this many steps "
                                    "(or sooner, by --checkpoint-seconds)")
    checkpoint_seconds: float = _option(60.0, "write last.npz at least this often, in seconds of training",
                                        type=float)
    tensorboard: bool = _option(False, "also write TensorBoard event files (tensorboard extra)")
    backend: str = _option("exact", "exact engine, or gradients from Aer shots of the real circuits", choices=BACKENDS)
    engine: str = _option("cpu", "exact engine path: compiled CPU kernels, the numpy reference, or CUDA kernels on a GPU "
                          "(gpu extra)", choices=ENGINES)
    precision: str = _option("float64", "exact engine arithmetic (float32: cpu or gpu engine)", choices=PRECISIONS)
    neuron_mode: str = _option("postselect", "what the neurons compute: postselect (the paper's training), "
                               "amplify[:L] (fixed-point amplitude amplification, L odd >= 3 uses per level), "
                               "rus[:R] (repeat-until-success, R retries) or keep (every shot kept)", metavar="MODE")
    unscored: str = _option("postselect", "the steps whose outcome is not scored: postselected on their targets (the "
                            "paper's training), or measured and the outcome discarded, as a device runs them "
                            "(the density path)", choices=UNSCORED)
    noise: str | None = _option(None, "train under a device's noise: none, rates (neuron=0.01,write=0.001,damping=0.002,"
                                "dephasing=0.002,readout=0.02) or a backend to read them from (fake_torino); the "
                                "density path", type=str, metavar="NOISE")
    gradient: str = _option("param-shift", "how the aer backend estimates gradients", choices=GRADIENTS)
    shots: int = _option(1024, "shots per circuit row (aer backend)")
    device: str = _option("CPU", "Aer device (aer backend)", choices=DEVICES)
    workers: int = _option(1, "data-parallel workers on Ray (distributed extra); 1: this process alone")
    address: str | None = _option(None, "Ray cluster to join with --workers: auto or HOST:PORT (default: a local "
                                  "instance with --workers CPUs, shut down at the end)", type=str)
    argv: list = _option(list, "the command line that started the run (recorded)", cli=False)

    def __post_init__(self) -> None:
        for name, allowed in (("backend", BACKENDS), ("gradient", GRADIENTS), ("device", DEVICES)):
            _choice(name, getattr(self, name), allowed)
        _positive_ints(self, ("steps", "validate_every", "shots", "workers", "checkpoint_every"))
        _positive_seconds(self, {"checkpoint_seconds": False, "timeout": True})
        if self.noise is not None and not is_backend_name(self.noise):
            rates = parse_noise(self.noise)  # checked here; a backend's is read when the model is known
            object.__setattr__(self, "noise", rates.rates() or "none")
        spec = EngineSpec(self.engine, self.precision, NeuronMode.parse(self.neuron_mode), self.unscored,
                          None if self.noise is None or is_backend_name(self.noise) else self.noise)  # one check
        object.__setattr__(self, "neuron_mode", str(spec.neuron_mode))
        if self.stop_at_loss is not None and not math.isfinite(self.stop_at_loss):
            raise ValueError(f"stop_at_loss must be a finite validation loss, got {self.stop_at_loss}.")
        if self.workers > 1 and self.backend != "exact":
            raise ValueError(f"workers > 1 splits the exact engine's batches; backend {self.backend!r} runs in one process.")
        if self.address is not None and self.workers == 1:
            raise ValueError(f"address {self.address!r} joins a Ray cluster for data-parallel workers; set workers > 1.")

    @property
    def device_meaning(self) -> bool:
        """Whether the run trains for more than the paper's meaning (measured steps, noise, or
        neurons that keep or retry failed branches): the density path."""
        return self.unscored != "postselect" or self.noise not in (None, "none") or \
            NeuronMode.parse(self.neuron_mode).kind in ("keep", "rus")

    def engine_spec(self, noise=None) -> EngineSpec:
        """What the exact engine computes and where, with ``noise`` the run's
        :class:`~qrnn_qiskit.core.noise.NoiseSpec` (resolved for its model; see
        :func:`qrnn_qiskit.circuits.noise.resolve_noise`)."""
        return EngineSpec(self.engine, self.precision, NeuronMode.parse(self.neuron_mode), self.unscored, noise)


GROUPS = {"data": DataSettings, "model": ModelSettings, "optimizer": OptimizerSettings, "run": RunSettings}


def _flat_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """Flat setting name -> (group, field), in group order."""
    out = {}
    for group, cls in GROUPS.items():
        for f in dataclasses.fields(cls):
            out[f.metadata.get("flat", f.name)] = (group, f)
    return out


FLAT = _flat_fields()


@dataclass(frozen=True, init=False)
class TrainSettings:
    """Every setting of a training run: one group of each kind.

    Build it from flat names (``TrainSettings(dataset="digits01", workspace=7, steps=1200)``), or
    from groups (``TrainSettings(data=DataSettings(...), model=ModelSettings(...))``); unnamed
    settings take their defaults.

    Raises:
        ValueError: naming the setting, what arrived and what is expected (an unknown name too).
        TypeError: for a group of the wrong type.
    """

    data: DataSettings
    model: ModelSettings
    optimizer: OptimizerSettings
    run: RunSettings

    def __init__(self, *, data: DataSettings | None = None, model: ModelSettings | str | None = None,
                 optimizer: OptimizerSettings | str | None = None, run: RunSettings | None = None, **flat) -> None:
        for name, value in (("model", model), ("optimizer", optimizer)):  # flat settings of the same name
            if isinstance(value, str):
                flat[name] = value
        groups = {"data": data, "model": model if not isinstance(model, str) else None,
                  "optimizer": optimizer if not isinstance(optimizer, str) else None, "run": run}
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ValueError(f"Unknown training settings {unknown}; this qrnn-qiskit knows {sorted(FLAT)}.")
        for group, cls in GROUPS.items():
            given = groups[group]
            if given is not None and not isinstance(given, cls):
                raise TypeError(f"{group} must be a {cls.__name__}, got {type(given).__name__}.")
            mine = {f.name: flat[name] for name, (g, f) in FLAT.items() if g == group and name in flat}
            value = dataclasses.replace(given, **mine) if given is not None else cls(**mine)
            object.__setattr__(self, group, value)
        self._check_across_groups()

    def _check_across_groups(self) -> None:
        model, run, optimizer = self.model, self.run, self.optimizer
        if model.kind != "qrnn" and (run.backend != "exact" or run.workers > 1 or run.engine == "gpu"
                                     or run.precision != "float64"):
            raise ValueError(f"model {model.kind!r} trains in one process in float64 on the CPU (torch); "
                             "drop backend, workers, engine gpu and precision.")
        if optimizer.loss != "reference" and model.kind == "qrnn":
            raise ValueError(f"loss {optimizer.loss!r} trains the classical baselines (model lstm or rnn); the QRNN's engine "
                             "computes the reference loss.")
        if run.neuron_mode != "postselect" and (model.kind != "qrnn" or run.backend != "exact"):
            raise ValueError(f"neuron_mode {run.neuron_mode} trains a QRNN on the exact engine; got model {model.kind!r}, "
                             f"backend {run.backend!r}.")
        if (run.unscored != "postselect" or run.noise not in (None, "none")) and (model.kind != "qrnn"
                                                                               or run.backend != "exact"):
            raise ValueError(f"unscored {run.unscored!r} and noise {run.noise!r} train a QRNN on the exact engine's "
                             f"density path; got model {model.kind!r}, backend {run.backend!r}.")

    # ------------------------------------------------------------------ flat form
    def get(self, name: str):
        """The setting of flat name ``name`` (``settings.get("learning_rate")``)."""
        if name not in FLAT:
            raise ValueError(f"Unknown training setting {name!r}; this qrnn-qiskit knows {sorted(FLAT)}.")
        group, f = FLAT[name]
        return getattr(getattr(self, group), f.name)

    def replace(self, **flat) -> TrainSettings:
        """A copy with the flat settings given changed (and checked)."""
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ValueError(f"Unknown training settings {unknown}; this qrnn-qiskit knows {sorted(FLAT)}.")
        return TrainSettings(**{**self.to_dict(), **flat})

    def to_dict(self) -> dict:
        """The flat form: one entry per setting, as checkpoints and ``config.json`` store it."""
        return {name: dataclasses.asdict(getattr(self, group))[f.name] for name, (group, f) in FLAT.items()}

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        """Settings stored in a checkpoint or ``config.json`` (older runs' ``initial_bias`` is ``bias``).

        Raises:
            ValueError: for something that is not a mapping, or keys that are no setting.
        """
        if not isinstance(data, dict):
            raise ValueError(f"Training settings must be a mapping of names to values, got {type(data).__name__}.")
        data = dict(data)
        if "initial_bias" in data:
            data.setdefault("bias", data.pop("initial_bias"))
        return cls(**data)

    @classmethod
    def from_config(cls, config, **overrides) -> TrainSettings:
        """The settings a run folder's ``config.json`` records (``qrnn train --config FILE``), with
        ``overrides`` (flat names) taking precedence; the recorded command line is not kept.

        Raises:
            ValueError: for a missing or unreadable file, or one that holds no training settings.
        """
        path = Path(config)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"Cannot read the run configuration {path}: {exc}. Expected a run folder's config.json "
                             "(qrnn train writes one).") from exc
        stored = data.get("settings", data) if isinstance(data, dict) else None
        if not isinstance(stored, dict):
            raise ValueError(f"{path} holds no training settings: expected a run folder's config.json, whose "
                             "'settings' maps setting names to values.")
        stored = {k: v for k, v in stored.items() if k != "argv"}
        return cls.from_dict({**stored, **overrides})

    @staticmethod
    def options() -> dict[str, tuple[str, dataclasses.Field]]:
        """Flat name -> (group, field) of every setting, in group order (the command line's options)."""
        return dict(FLAT)

    # ------------------------------------------------------------------ derived
    def validate(self) -> TrainSettings:
        """The settings are checked when made; kept so older code that calls it still runs."""
        return self

    def load_dataset(self) -> Dataset:
        """The dataset these settings name."""
        return self.data.load()

    def model_config(self, input_width: int):
        """The model these settings train on a dataset of ``input_width``-bit tokens."""
        return self.model.config(input_width)
