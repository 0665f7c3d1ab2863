"""One runner interface over any Qiskit ``BaseSamplerV2``.

A :class:`SamplerRunner` builds the QRNN circuit of a sequence length once (weights bound, input
bits left as the parameters ``x``), hands the sampler one PUB whose parameter-value array holds one
row per sequence, and turns the ``out`` and ``flag`` registers into a
:class:`~qrnn_qiskit.evaluation.shots.ShotResult`. Aer's sampler
(:class:`~qrnn_qiskit.runners.aer.AerRunner`), the IBM runtime's
(:class:`~qrnn_qiskit.runners.ibm.IBMRunner`) and any other (``BackendSamplerV2`` over a local
backend, say) plug in by the sampler they hold and, where they need one, a transpile step.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.evaluation.shots import ShotResult
from qrnn_qiskit.runners.shots import parameter_order, shots_from_bits

logger = logging.getLogger("qrnn_qiskit")

__all__ = ["SamplerRunner", "check_shots"]


def check_shots(shots: object) -> int:
    """``shots`` as an int, or a ValueError for anything but a positive integer."""
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots <= 0:
        raise ValueError(f"shots must be a positive integer, got {shots!r}.")
    return int(shots)


class SamplerRunner:
    """Sample QRNN circuits through a ``BaseSamplerV2``.

    Args:
        sampler: any Qiskit ``BaseSamplerV2`` that runs mid-circuit measurements (and ``if_else``
            for rus mode); subclasses may create theirs.
        shots: shots per sequence.
        neuron_mode: ``postselect`` or ``rus[:R]`` (a :class:`~qrnn_qiskit.core.modes.NeuronMode`
            or its spelling).
        synthesis: parameter-block strategy of the circuits (see :mod:`qrnn_qiskit.circuits.synthesis`).

    Raises:
        ValueError: for non-positive shots or an unknown neuron mode.
    """

    def __init__(self, sampler=None, *, shots: int = 1024, neuron_mode: str | NeuronMode = "postselect",
                 synthesis: str = "auto") -> None:
        self.sampler = sampler
        self.shots = check_shots(shots)
        self.neuron_mode = NeuronMode.parse(neuron_mode)
        self.synthesis = synthesis

    # ------------------------------------------------------------------------------ circuits
    def circuit(self, config: QRNNConfig, length: int, weights) -> QuantumCircuit:
        """The circuit run for ``length`` steps: inputs are the parameters ``x``; weights bound
        (numbers) or symbolic (a ``ParameterVector``)."""
        numeric = not isinstance(weights, ParameterVector)
        circuit = qrnn_sequence(
            config, length, weights=weights, inputs=ParameterVector("x", length * config.input_width),
            neuron_mode=self.neuron_mode, synthesis=self.circuit_synthesis(numeric),
        )
        return self.transpile(circuit)

    def circuit_synthesis(self, numeric_weights: bool) -> str:
        """The block synthesis of the circuits this runner builds."""
        return self.synthesis

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """Compile a built circuit for the sampler (the identity here)."""
        return circuit

    @staticmethod
    def input_values(config: QRNNConfig, circuit: QuantumCircuit, inputs: np.ndarray) -> np.ndarray:
        """One row of ``circuit``'s parameter values per sequence of tokens ``inputs`` ``(B, T)``."""
        bits = config.token_to_bits(inputs).reshape(inputs.shape[0], -1).astype(float)
        return parameter_order(circuit, {"x": bits})

    # ------------------------------------------------------------------------------ sampling
    def run(self, pubs: list):
        """Run PUBs on the sampler and wait; returns its ``PrimitiveResult``."""
        if self.sampler is None:  # pragma: no cover - subclasses without a sampler override run
            raise QRNNError(f"{type(self).__name__} has no sampler to run on.")
        return self.sampler.run(pubs, shots=self.shots).result()

    def to_shots(self, config: QRNNConfig, pub_result, length: int, rows: int | None = None) -> ShotResult:
        """A :class:`ShotResult` from one PUB's result of a circuit of ``length`` steps.

        Raises:
            QRNNError: if the result lacks the ``out``/``flag`` registers or has another shape.
        """
        data = pub_result.data
        if not hasattr(data, "out") or not hasattr(data, "flag"):
            raise QRNNError("The result has no 'out' and 'flag' registers: it is not of a qrnn circuit.")
        out = data.out.to_bool_array(order="little")
        flags = data.flag.to_bool_array(order="little")
        if out.ndim == 2:  # a PUB with a single row
            out, flags = out[None], flags[None]
        if (rows is not None and out.shape[0] != rows) or out.shape[-1] != length * config.input_width:
            raise QRNNError(
                f"The result holds {out.shape[0]} sequences of {out.shape[-1] // config.input_width} steps, but "
                f"{rows} of {length} were expected: pass the same dataset, split and limit as at submission."
            )
        return shots_from_bits(config, out, flags, length, self.neuron_mode)

    def sample(self, config: QRNNConfig, parameters: np.ndarray, inputs: np.ndarray) -> ShotResult:
        """Shots for ``B`` sequences of tokens ``inputs`` ``(B, T)`` at bound ``parameters``."""
        params = config.validate_parameters(parameters)
        inputs = config.validate_tokens(inputs, "inputs")
        if inputs.ndim != 2:
            raise ValueError(f"inputs must have shape (batch, steps), got {inputs.shape}.")
        length = inputs.shape[1]
        started = time.perf_counter()
        logger.info("%s: building and compiling the %d-step circuit (%d qubits) ...", self.label, length,
                    config.num_qubits)
        circuit = self.circuit(config, length, params)
        logger.info("%s: %d sequence(s) x %d shots (%d operations a shot; circuit ready after %.1f s) ...", self.label,
                    inputs.shape[0], self.shots, circuit.size(), time.perf_counter() - started)
        result = self.run([(circuit, self.input_values(config, circuit, inputs))])
        logger.info("%s: sampled in %.1f s", self.label, time.perf_counter() - started)
        return self.to_shots(config, result[0], length, inputs.shape[0])

    @property
    def label(self) -> str:
        """Who samples, in progress lines."""
        return type(self).__name__
