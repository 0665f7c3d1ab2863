"""Gate-level QRNN circuits: neuron, cell and unrolled sequence."""

from __future__ import annotations

from .cell import input_parameters, qrnn_cell, qrnn_sequence, weight_parameters
from .modes import NeuronMode
from .neuron import neuron_program, quantum_neuron

__all__ = [
    "NeuronMode",
    "quantum_neuron",
    "neuron_program",
    "qrnn_cell",
    "qrnn_sequence",
    "weight_parameters",
    "input_parameters",
]
