"""Gate-level QRNN circuits: neuron, cell and unrolled sequence."""

from __future__ import annotations

from qrnn_qiskit.circuits.cell import input_parameters, qrnn_cell, qrnn_sequence, weight_parameters
from qrnn_qiskit.circuits.neuron import neuron_program, quantum_neuron
from qrnn_qiskit.core.modes import NeuronMode

__all__ = [
    "NeuronMode",
    "quantum_neuron",
    "neuron_program",
    "qrnn_cell",
    "qrnn_sequence",
    "weight_parameters",
    "input_parameters",
]
