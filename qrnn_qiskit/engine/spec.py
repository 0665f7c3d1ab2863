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

__all__ = ["ENGINES", "PRECISIONS", "EngineSpec", "CAPABILITIES"]

#: the engine's paths: compiled CPU kernels (default), the numpy reference, CUDA kernels on a GPU
ENGINES = ("cpu", "numpy", "gpu")
PRECISIONS = ("float64", "float32")

#: what each backend computes: complex amplitudes (amplified neurons) and single precision
CAPABILITIES = {
    "numpy": {"complex": True, "float32": False},
    "cpu": {"complex": False, "float32": True},
    "gpu": {"complex": False, "float32": True},
}


@dataclass(frozen=True)
class EngineSpec:
    """The exact engine's path, precision and neuron meaning.

    Build it from the spellings of the command line with :meth:`parse` (a spec passes through),
    or directly; either way it is checked once, here.

    Attributes:
        path: the path asked for: ``cpu``, ``numpy`` or ``gpu``.
        precision: ``float64`` or ``float32``.
        neuron_mode: ``postselect`` or ``amplify:L`` (a :class:`NeuronMode`).

    Raises:
        ValueError: for an unknown path or precision, a neuron mode without an exact meaning
            (``rus``), or a combination no backend computes (say ``amplify`` in float32).
    """

    path: str = "cpu"
    precision: str = "float64"
    neuron_mode: NeuronMode = NeuronMode()

    def __post_init__(self) -> None:
        object.__setattr__(self, "neuron_mode", NeuronMode.parse(self.neuron_mode))
        if self.path not in ENGINES:
            raise ValueError(
                f"engine must be one of {', '.join(ENGINES)}, got {self.path!r}: 'cpu' is the compiled "
                "kernel, 'numpy' the reference path, 'gpu' CUDA kernels on an NVIDIA GPU (gpu extra)."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")
        mode = self.neuron_mode
        if mode.is_rus:
            raise ValueError(
                f"The exact engine computes neuron modes 'postselect' and 'amplify:L', not {mode} "
                "(repeat-until-success is exact only for basis-state sources); sample rus circuits with "
                "backend 'aer'."
            )
        if self.precision == "float32" and not CAPABILITIES[self.backend]["float32"]:
            if mode.is_amplify:
                raise ValueError(f"neuron mode {mode} runs on the numpy path in float64 (complex amplitudes); "
                                 f"got precision {self.precision!r}. Use float64.")
            raise ValueError(f"precision {self.precision!r} needs engine 'cpu' or 'gpu'; the numpy path is float64 only.")
        if mode.is_amplify and self.path == "gpu":
            raise ValueError(f"neuron mode {mode} runs on the numpy path in float64 (complex amplitudes); got "
                             "engine 'gpu', whose kernels are real. Use engine 'cpu' or 'numpy'.")

    @classmethod
    def parse(cls, engine: str | EngineSpec = "cpu", precision: str = "float64",
              neuron_mode: str | NeuronMode = "postselect") -> EngineSpec:
        """The spec of these spellings; an :class:`EngineSpec` given as ``engine`` passes through."""
        if isinstance(engine, EngineSpec):
            return engine
        return cls(engine, precision, NeuronMode.parse(neuron_mode))

    @property
    def complex_amplitudes(self) -> bool:
        """Amplified neurons map amplitudes by complex numbers."""
        return self.neuron_mode.is_amplify

    @property
    def backend(self) -> str:
        """The backend that computes this spec: the path asked for, or ``numpy`` where the path's
        kernels cannot (amplified neurons on the real-valued ``cpu`` kernels; see :attr:`note`)."""
        if self.complex_amplitudes and not CAPABILITIES[self.path]["complex"]:
            return "numpy"
        return self.path

    @property
    def note(self) -> str | None:
        """Why :attr:`backend` is not the path asked for (``None`` when it is)."""
        if self.backend == self.path:
            return None
        return (f"neuron mode {self.neuron_mode} has complex amplitudes, which the {self.path} kernels do not "
                "compute: the numpy path runs it")

    def to_dict(self) -> dict:
        return {"engine": self.path, "precision": self.precision, "neuron_mode": str(self.neuron_mode)}

    def __str__(self) -> str:
        text = f"{self.backend} {self.precision} {self.neuron_mode}"
        return text if self.note is None else f"{text} ({self.note})"
