"""Runner-neutral shot handling: the classical bits of a QRNN circuit to tokens and acceptance.

Every runner (:class:`~qrnn_qiskit.runners.sampler.SamplerRunner` over any ``BaseSamplerV2``:
Aer, the IBM runtime, a local backend sampler) returns the ``out`` and ``flag`` registers of the
circuits of :func:`qrnn_qiskit.circuits.qrnn_sequence`; this module turns them into a
:class:`ShotResult` and scores it against a dataset as the reference evaluates.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.evaluation.shots import ShotResult

__all__ = ["shots_from_bits", "parameter_order", "row_columns"]


def shots_from_bits(
    config: QRNNConfig, out: np.ndarray, flags: np.ndarray, length: int, neuron_mode: str | NeuronMode
) -> ShotResult:
    """A :class:`ShotResult` from the ``out`` and ``flag`` registers as boolean arrays
    ``(..., shots, bits)`` (little-endian bit order), for circuits built in ``neuron_mode``."""
    bits = out.reshape(out.shape[:-1] + (length, config.input_width)).astype(np.int64)
    weights = 1 << np.arange(config.input_width - 1, -1, -1)
    tokens = (bits * weights).sum(axis=-1)
    # the step's acceptance-deciding flags (all of them in postselect mode) must all read 0
    per_neuron = NeuronMode.parse(neuron_mode).acceptance_mask(config.order)
    per_step = np.tile(per_neuron, config.num_neurons)
    shaped = flags.reshape(flags.shape[:-1] + (length, per_step.size))
    return ShotResult(tokens=tokens, neurons_ok=~np.any(shaped[..., per_step], axis=-1))


def parameter_order(circuit: QuantumCircuit, columns: dict[str, np.ndarray]) -> np.ndarray:
    """Arrange value columns in the order of ``circuit.parameters`` (vector name -> (rows, n))."""
    rows = next(iter(columns.values())).shape[0]
    values = np.empty((rows, circuit.num_parameters))
    for k, parameter in enumerate(circuit.parameters):
        vector = parameter.vector.name
        values[:, k] = columns[vector][:, parameter.index]
    return values


def row_columns(config: QRNNConfig, vectors: np.ndarray, inputs: np.ndarray,
                targets: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Parameter values of the circuit rows ``N`` weight vectors x ``B`` sequences (vector-major):
    ``w`` (each vector once a sequence), ``x`` the input bits and, with ``targets``, ``z`` the
    target bits (each sequence's once a vector); columns by vector name, for :func:`parameter_order`."""
    batch, count = inputs.shape[0], len(vectors)
    columns = {"w": np.repeat(vectors, batch, axis=0),
               "x": np.tile(config.token_to_bits(inputs).reshape(batch, -1), (count, 1)).astype(float)}
    if targets is not None:
        columns["z"] = np.tile(config.token_to_bits(targets).reshape(batch, -1), (count, 1)).astype(float)
    return columns
