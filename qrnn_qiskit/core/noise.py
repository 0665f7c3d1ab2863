"""The device's noise, as the exact engine models it: a :class:`NoiseSpec`.

Per neuron, a QRNN cell runs hundreds of gates; the engine does not follow them one by one but
models each neuron as its ideal map (an instrument, with the ancilla readout errors) followed by
noise on every lane (io and workspace) the neuron touches:

* ``neuron``: a depolarizing channel of parameter ``lambda`` on each lane
  (``rho -> (1 - lambda) rho + lambda Tr_q(rho) I/2``, Qiskit's ``depolarizing_error``),
  standing for the neuron's gate errors;
* ``damping`` and ``dephasing``: amplitude damping ``gamma`` and phase damping ``lambda`` on each
  lane (Qiskit's ``amplitude_damping_error`` and ``phase_damping_error``), standing for idling
  through the neuron's duration (``T1`` and ``T2``);
* ``write``: a depolarizing channel on each io lane after the input is written;
* ``readout``: ``(P(read 1 | 0), P(read 0 | 1))`` of every measurement, io and ancillas.

A spec is given as rates (``"neuron=0.01,readout=0.02"``) or derived from a backend's reported
errors and durations (:func:`qrnn_qiskit.circuits.noise.noise_from_backend`), which records how
in :attr:`NoiseSpec.source`. All zero is no noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["NoiseSpec", "parse_noise"]

_RATES = ("neuron", "write", "damping", "dephasing", "readout0", "readout1")


@dataclass(frozen=True)
class NoiseSpec:
    """Noise per neuron, per io write and per measurement (see the module).

    Attributes:
        neuron: depolarizing parameter on each lane after each neuron.
        write: depolarizing parameter on each io lane after each input write.
        damping: amplitude-damping ``gamma`` on each lane after each neuron.
        dephasing: phase-damping ``lambda`` on each lane after each neuron.
        readout0: ``P(read 1 | 0)`` of every measurement.
        readout1: ``P(read 0 | 1)`` of every measurement.
        source: how the figures were obtained (``rates``, or a backend and what was read from it).

    Raises:
        ValueError: for a rate outside ``[0, 1)`` (readout: ``[0, 0.5)``).
    """

    neuron: float = 0.0
    write: float = 0.0
    damping: float = 0.0
    dephasing: float = 0.0
    readout0: float = 0.0
    readout1: float = 0.0
    source: str = "rates"

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"noise {name} must be a probability, got {value!r}.")
            limit = 0.5 if name.startswith("readout") else 1.0
            if not 0.0 <= value < limit:
                raise ValueError(f"noise {name} must lie in [0, {limit:g}), got {value}.")
            object.__setattr__(self, name, float(value))

    @property
    def is_zero(self) -> bool:
        return all(getattr(self, name) == 0.0 for name in _RATES)

    @property
    def readout(self) -> tuple[float, float]:
        return self.readout0, self.readout1

    @property
    def lane_noise(self) -> bool:
        """Whether anything acts on the lanes after a neuron."""
        return bool(self.neuron or self.damping or self.dephasing)

    def rates(self) -> str:
        """The spec in its ``name=value,...`` spelling (what :func:`parse_noise` reads)."""
        return ",".join(f"{name}={getattr(self, name):.6g}" for name in _RATES if getattr(self, name))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> NoiseSpec:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown noise fields {unknown}; expected {[f.name for f in fields(cls)]}.")
        return cls(**data)

    def __str__(self) -> str:
        return f"{self.rates() or 'no noise'} ({self.source})"


def parse_noise(text: str) -> NoiseSpec:
    """``none`` or rates such as ``neuron=0.01,write=0.001,damping=0.002,dephasing=0.002,readout=0.02``
    (``readout`` sets both readout errors; ``readout0``/``readout1`` each).

    Raises:
        ValueError: naming what is expected.
    """
    if text.strip().lower() in ("none", ""):
        return NoiseSpec()
    values: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None or name not in (*_RATES, "readout"):
            raise ValueError(
                f"noise rates look like neuron=0.01,write=0.001,damping=0.002,dephasing=0.002,readout=0.02 "
                f"(names: {', '.join((*_RATES, 'readout'))}); got {text!r}."
            )
        if name == "readout":
            values["readout0"] = values["readout1"] = number
        else:
            values[name] = number
    return NoiseSpec(**values, source="rates")
