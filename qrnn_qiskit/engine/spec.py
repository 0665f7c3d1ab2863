"""What the exact engine computes and where: one frozen :class:`EngineSpec`, validated once.

The spec names the path (compiled ``cpu`` kernels, the ``numpy`` reference, ``gpu`` CUDA
kernels), the arithmetic (``float64`` or ``float32``) and the meaning of the neurons
(:class:`~qrnn_qiskit.core.modes.NeuronMode`). Each backend declares what it can compute; the
spec resolves the path to the backend that runs it (:attr:`EngineSpec.backend`) and says why
when that is not the path asked for, so no caller checks these combinations itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.noise import NoiseSpec, parse_noise

__all__ = ["ENGINES", "PRECISIONS", "UNSCORED", "EngineSpec", "CAPABILITIES"]

#: the engine's paths: compiled CPU kernels (default), the numpy reference, CUDA kernels on a GPU
ENGINES = ("cpu", "numpy", "gpu")
PRECISIONS = ("float64", "float32")
#: how a step whose outcome is not scored is read: postselected on its target (the reference), or
#: measured and its outcome discarded (a device)
UNSCORED = ("postselect", "measure")

#: what each backend computes: complex amplitudes (amplified neurons), single precision, and
#: mixed states (measured steps, every neuron mode as its channel, noise)
CAPABILITIES = {
    "numpy": {"complex": True, "float32": False, "mixed": False},
    "cpu": {"complex": False, "float32": True, "mixed": False},
    "gpu": {"complex": False, "float32": True, "mixed": False},
    "density": {"complex": True, "float32": True, "mixed": True},
}


@dataclass(frozen=True)
class EngineSpec:
    """The exact engine's path, precision and neuron meaning.

    Build it from the spellings of the command line with :meth:`parse` (a spec passes through),
    or directly; either way it is checked once, here.

    Attributes:
        path: the path asked for: ``cpu``, ``numpy`` or ``gpu``.
        precision: ``float64`` or ``float32``.
        neuron_mode: ``postselect``, ``amplify:L``, ``rus:R`` or ``keep`` (a :class:`NeuronMode`).
        unscored: ``postselect`` (teacher forcing, the reference's meaning) or ``measure`` (every
            step's io measured and its outcome discarded, as a device runs the circuit).
        noise: the device's noise (:class:`~qrnn_qiskit.core.noise.NoiseSpec`, or its rates), or None.

    Raises:
        ValueError: for an unknown path, precision or unscored, or a combination no backend
            computes (say ``amplify`` in float32 on the pure paths).
    """

    path: str = "cpu"
    precision: str = "float64"
    neuron_mode: NeuronMode = NeuronMode()
    unscored: str = "postselect"
    noise: NoiseSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "neuron_mode", NeuronMode.parse(self.neuron_mode))
        if isinstance(self.noise, str):
            object.__setattr__(self, "noise", parse_noise(self.noise))
        if self.noise is not None and self.noise.is_zero:
            object.__setattr__(self, "noise", None)
        if self.unscored not in UNSCORED:
            raise ValueError(f"unscored must be one of {', '.join(UNSCORED)}, got {self.unscored!r}.")
        if self.path not in ENGINES:
            raise ValueError(
                f"engine must be one of {', '.join(ENGINES)}, got {self.path!r}: 'cpu' is the compiled "
                "kernel, 'numpy' the reference path, 'gpu' CUDA kernels on an NVIDIA GPU (gpu extra)."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")
        mode = self.neuron_mode
        if self.precision == "float32" and not CAPABILITIES[self.backend]["float32"]:
            if mode.is_amplify:
                raise ValueError(f"neuron mode {mode} runs on the numpy path in float64 (complex amplitudes); "
                                 f"got precision {self.precision!r}. Use float64.")
            raise ValueError(f"precision {self.precision!r} needs engine 'cpu' or 'gpu'; the numpy path is float64 only.")
        if mode.is_amplify and self.path == "gpu" and not self.mixed:
            raise ValueError(f"neuron mode {mode} runs on the numpy path in float64 (complex amplitudes); got "
                             "engine 'gpu', whose kernels are real. Use engine 'cpu' or 'numpy'.")

    @classmethod
    def parse(cls, engine: str | EngineSpec = "cpu", precision: str = "float64",
              neuron_mode: str | NeuronMode = "postselect", unscored: str = "postselect",
              noise: NoiseSpec | str | None = None) -> EngineSpec:
        """The spec of these spellings; an :class:`EngineSpec` given as ``engine`` passes through."""
        if isinstance(engine, EngineSpec):
            return engine
        return cls(engine, precision, NeuronMode.parse(neuron_mode), unscored, noise)

    @property
    def mixed(self) -> bool:
        """Whether the meaning needs mixed states: measured steps, a neuron mode that keeps or
        corrects failed branches (``keep``, ``rus``), or noise."""
        return self.unscored == "measure" or self.noise is not None or self.neuron_mode.kind in ("keep", "rus")

    @property
    def complex_amplitudes(self) -> bool:
        """Amplified neurons map amplitudes by complex numbers."""
        return self.neuron_mode.is_amplify

    @property
    def backend(self) -> str:
        """The backend that computes this spec: the path asked for; ``density`` for a meaning that
        needs mixed states; ``numpy`` for amplified neurons, which the real-valued compiled kernels
        do not compute (see :attr:`note`)."""
        if self.mixed:
            return "density"
        if self.complex_amplitudes and not CAPABILITIES[self.path]["complex"]:
            return "numpy"
        return self.path

    @property
    def note(self) -> str | None:
        """Why :attr:`backend` is not the path asked for (``None`` when it is)."""
        if self.backend == self.path:
            return None
        if self.mixed:
            return (f"{self.meaning} needs mixed states: the density path runs it (4**(I+W) numbers a sequence)")
        return (f"neuron mode {self.neuron_mode} has complex amplitudes, which the {self.path} kernels do not "
                "compute: the numpy path runs it")

    @property
    def meaning(self) -> str:
        """The circuits' meaning in words: neurons, don't-care steps, noise."""
        noise = "no noise" if self.noise is None else f"noise {self.noise.rates()}"
        return f"neurons {self.neuron_mode}, don't-care steps {self.unscored.removesuffix('e')}ed, {noise}"

    def to_dict(self) -> dict:
        out = {"engine": self.path, "precision": self.precision, "neuron_mode": str(self.neuron_mode)}
        if self.unscored != "postselect":
            out["unscored"] = self.unscored
        if self.noise is not None:
            out["noise"] = self.noise.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> EngineSpec:
        """The spec :meth:`to_dict` wrote (for a process that rebuilds it: a Ray worker)."""
        noise = data.get("noise")
        return cls(data.get("engine", "cpu"), data.get("precision", "float64"), data.get("neuron_mode", "postselect"),
                   data.get("unscored", "postselect"), NoiseSpec.from_dict(noise) if isinstance(noise, dict) else noise)

    def __str__(self) -> str:
        text = f"{self.backend} {self.precision} {self.neuron_mode}"
        return text if self.note is None else f"{text} ({self.note})"
