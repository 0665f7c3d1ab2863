"""Every setting of a training run, with its default, its help text and its command-line flag.

:class:`TrainSettings` is the one source of the defaults: the ``qrnn train`` options are generated
from its fields (``metadata`` holds the help text, the short flag and, where it differs from the
default's type, how the command line spells a value).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine.exact import ENGINES, PRECISIONS
from qrnn_qiskit.models import LOSSES, MODELS
from qrnn_qiskit.training.optim import OPTIMIZERS

__all__ = ["TrainSettings", "parse_lr_schedule", "BACKENDS", "GRADIENTS", "DEVICES"]

BACKENDS = ("exact", "aer")
GRADIENTS = ("param-shift", "spsa")
DEVICES = ("CPU", "GPU")


def parse_lr_schedule(text: str | None) -> list[list] | None:
    """``"390:0.002,1000:0.001"`` -> ``[[390, 0.002], [1000, 0.001]]`` (``None`` stays ``None``).

    Raises:
        ValueError: for anything not of the form ``STEP:LR[,STEP:LR...]``.
    """
    if text is None:
        return None
    try:
        return [[int(step), float(lr)] for step, lr in (item.split(":") for item in text.split(","))]
    except ValueError:
        raise ValueError(f"expected STEP:LR[,STEP:LR...] such as 390:0.002, got {text!r}.") from None


def _option(default, help: str, **cli):
    """A dataclass field whose metadata describes its command-line option."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return field(**factory, metadata={"help": help, **cli})


@dataclass(frozen=True)
class TrainSettings:
    """Every setting of a training run (the reference's options, same defaults where it has them)."""

    dataset: str = _option("simple-seq", "dataset name (see qrnn datasets)")
    data_dir: str | None = _option(None, "folder of the reference MNIST csv.gz files", path=True)
    model: str = _option("qrnn", "what to train: the QRNN, or a classical baseline of --hidden units (torch extra)",
                         choices=MODELS)
    hidden: int = _option(10, "hidden units of the lstm or rnn baseline")
    workspace: int = _option(3, "workspace lanes W (the recurrent state)", short="-W")
    stages: int = _option(2, "work stages S", short="-S")
    order: int = _option(2, "neuron order k (nesting depth; k ancillas)", short="-k")
    degree: int = _option(2, "neuron degree d (largest weighted source subset)", short="-d")
    sentence_length: int = _option(20, "sequence length of the generated datasets")
    batch_size: int = _option(1, "sequences per step (per class for classification sets)")
    optimizer: str = _option("adam", "optimiser (as torch.optim: AdamW, SGD, RMSprop, L-BFGS)", choices=OPTIMIZERS)
    learning_rate: float = _option(0.003, "learning rate")
    # piecewise-constant learning rate: [[step, lr], ...]; the update after `step` steps and every
    # later one uses `lr` (until the next entry). None: learning_rate throughout.
    lr_schedule: list | None = _option(
        None, "later learning rates as STEP:LR[,STEP:LR...]: from STEP completed steps on, use LR",
        parse=parse_lr_schedule, metavar="STEP:LR,...",
    )
    weight_decay: float = _option(0.0, "decoupled weight decay (AdamW)")
    bias: float = _option(math.pi / 2, "the fixed, untrained offset of every neuron's angle", aliases=("--initial-bias",))
    initial_bias_spread: float = _option(0.1, "standard deviation of the initial trainable biases")
    initial_weights_spread: float = _option(0.01, "standard deviation of the initial subset weights")
    initial_unitaries_spread: float = _option(0.01, "standard deviation of the initial work-stage RY angles")
    steps: int = _option(5000, "training steps in all")
    seed: int = _option(82727, "seed of initialisation, batches and sampling")
    validate_every: int = _option(10, "steps between validations (and best-checkpoint updates)")
    # None: one fresh random validation batch (batch_size per class) each time, as the reference
    # does. N >= 1: a fixed set of N validation sequences drawn once; 0: the whole split. A fixed
    # set makes validation losses comparable between steps, so "best" is not a lucky batch.
    validation_size: int | None = _option(
        None, "validate on a fixed set of N validation sequences (0: the whole split) instead of a fresh "
        "random batch each time (the reference's way)", type=int,
    )
    loss: str = _option("reference", "training and validation loss: reference (the paper's: cross-entropy of the outcome "
                        "probabilities used as logits, minus its offset) or cross-entropy (-log p[target], the usual loss "
                        "of a classical network's logits; lstm/rnn only)", choices=LOSSES)
    # The paper's classical DNA baselines were trained with a loss on every step (digest section 4.2),
    # the QRNN on the last step only; this puts a model of either kind on the baselines' footing.
    score_all_steps: bool = _option(False, "put every step's prediction in the loss and the validation figures, not just "
                                    "the dataset's scored steps (as the paper trained its DNA baselines)")
    stop_at_loss: float | None = _option(None, "stop once the validation loss falls below this", type=float)
    timeout: float | None = _option(None, "stop after this many seconds (a resumed run counts its earlier time)", type=float)
    tensorboard: bool = _option(False, "also write TensorBoard event files (tensorboard extra)")
    backend: str = _option("exact", "exact engine, or gradients from Aer shots of the real circuits", choices=BACKENDS)
    engine: str = _option("cpu", "exact engine path: compiled CPU kernels, the numpy reference, or CUDA kernels on a GPU "
                          "(gpu extra)", choices=ENGINES)
    precision: str = _option("float64", "exact engine arithmetic (float32: cpu or gpu engine)", choices=PRECISIONS)
    neuron_mode: str = _option("postselect", "what the neurons compute: postselect (the paper's training), or "
                               "amplify[:L], fixed-point amplitude amplification with L (odd >= 3) uses per level "
                               "(complex amplitudes: numpy engine path)", metavar="MODE")
    init: str | None = _option(None, "start from the parameters of this checkpoint (same model), e.g. to fine-tune a "
                               "postselect-trained model under --neuron-mode amplify:L", file=True)
    gradient: str = _option("param-shift", "how the aer backend estimates gradients", choices=GRADIENTS)
    shots: int = _option(1024, "shots per circuit row (aer backend)")
    device: str = _option("CPU", "Aer device (aer backend)", choices=DEVICES)
    workers: int = _option(1, "data-parallel workers on Ray (distributed extra); 1: this process alone")
    address: str | None = _option(None, "Ray cluster to join with --workers: auto or HOST:PORT (default: a local "
                                  "instance with --workers CPUs, shut down at the end)", type=str)
    argv: list = _option(list, "the command line that started the run (recorded)", cli=False)

    def validate(self) -> None:
        """Check and normalise the settings.

        Raises:
            ValueError: naming the setting, what arrived and what is expected.
        """
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; available: {', '.join(OPTIMIZERS)}.")
        for name, allowed in (("backend", BACKENDS), ("gradient", GRADIENTS), ("device", DEVICES),
                              ("engine", ENGINES), ("precision", PRECISIONS), ("loss", LOSSES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Unknown {name} {getattr(self, name)!r}; expected one of {', '.join(allowed)}.")
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; expected one of {', '.join(MODELS)}.")
        if self.model != "qrnn" and (self.backend != "exact" or self.workers > 1 or self.engine == "gpu"
                                     or self.precision != "float64"):
            raise ValueError(f"model {self.model!r} trains in one process in float64 on the CPU (torch); "
                             "drop backend, workers, engine gpu and precision.")
        if self.loss != "reference" and self.model == "qrnn":
            raise ValueError(f"loss {self.loss!r} trains the classical baselines (model lstm or rnn); the QRNN's engine "
                             "computes the reference loss.")
        for name in ("steps", "validate_every", "batch_size", "shots", "workers", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
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
        if self.workers > 1 and self.backend != "exact":
            raise ValueError(f"workers > 1 splits the exact engine's batches; backend {self.backend!r} runs in one process.")
        if self.address is not None and self.workers == 1:
            raise ValueError(f"address {self.address!r} joins a Ray cluster for data-parallel workers; set workers > 1.")
        if self.engine == "numpy" and self.precision != "float64":
            raise ValueError(f"precision {self.precision!r} needs engine 'cpu' or 'gpu'; the numpy path is float64 only.")
        self._validate_neuron_mode()
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}.")

    def _validate_neuron_mode(self) -> None:
        from qrnn_qiskit.core.modes import NeuronMode

        mode = NeuronMode.parse(self.neuron_mode)  # ValueError naming the spellings
        if mode.is_rus:
            raise ValueError(f"neuron_mode {mode} has no exact meaning to train on; train with postselect or amplify:L.")
        if str(mode) != "postselect" and (self.model != "qrnn" or self.backend != "exact"):
            raise ValueError(f"neuron_mode {mode} trains a QRNN on the exact engine; got model {self.model!r}, "
                             f"backend {self.backend!r}.")
        if mode.is_amplify and (self.engine == "gpu" or self.precision != "float64"):
            raise ValueError(f"neuron_mode {mode} runs on the numpy path in float64 (complex amplitudes); "
                             f"got engine {self.engine!r}, precision {self.precision!r}.")
        object.__setattr__(self, "neuron_mode", str(mode))

    def learning_rate_after(self, done: int) -> float:
        """The learning rate of the update that follows ``done`` completed steps."""
        rate = self.learning_rate
        for step, lr in self.lr_schedule or ():
            if done >= step:
                rate = lr
        return rate

    def model_config(self, input_width: int):
        """The model these settings train on a dataset of ``input_width``-bit tokens: a
        :class:`QRNNConfig`, or a :class:`~qrnn_qiskit.baselines.ClassicalConfig` for lstm/rnn."""
        if self.model != "qrnn":
            from qrnn_qiskit.baselines import ClassicalConfig

            return ClassicalConfig(kind=self.model, hidden=self.hidden, input_width=input_width)
        return QRNNConfig(input_width=input_width, workspace=self.workspace, stages=self.stages, order=self.order,
                          degree=self.degree, bias=self.bias)

    def load_dataset(self):
        """The dataset these settings name (every step scored with ``score_all_steps``)."""
        from qrnn_qiskit.training.datasets import every_step_scored, get_dataset

        dataset = get_dataset(self.dataset, sentence_length=self.sentence_length, data_dir=self.data_dir)
        return every_step_scored(dataset) if self.score_all_steps else dataset

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        """Settings stored in a checkpoint or ``config.json`` (older runs' ``initial_bias`` is ``bias``).

        Raises:
            ValueError: for keys that are no setting.
        """
        data = dict(data)
        if "initial_bias" in data:
            data.setdefault("bias", data.pop("initial_bias"))
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown training settings {unknown}; this qrnn-qiskit knows {[f.name for f in fields(cls)]}.")
        return cls(**data)


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
            "(for example [[390, 0.002], [1000, 0.001]]; on the command line 390:0.002,1000:0.001)."
        )
    return pairs
