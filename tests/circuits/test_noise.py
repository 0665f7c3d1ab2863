"""The engine's noise at the gate level (``aer_noise_model``) and read off a backend
(``noise_from_backend``)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.cell import NEURON_NOISE, WRITE_NOISE
from qrnn_qiskit.circuits.noise import aer_noise_model, noise_from_backend
from qrnn_qiskit.circuits.targets import resolve_target
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.noise import NoiseSpec

CFG = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)


def test_markers_sit_after_every_neuron_and_write():
    circuit = qrnn_sequence(CFG, 2, weights=CFG.initial_parameters(seed=1), inputs=[1, 0], noise_markers=True)
    labels = [inst.operation.label for inst in circuit.data if inst.operation.name == "unitary"]
    lanes = CFG.input_width + CFG.workspace
    assert labels.count(NEURON_NOISE) == 2 * CFG.num_neurons * lanes
    assert labels.count(WRITE_NOISE) == 2 * CFG.input_width
    plain = qrnn_sequence(CFG, 2, weights=CFG.initial_parameters(seed=1), inputs=[1, 0])
    assert len(circuit.data) - len(plain.data) == len(labels)


def test_readout_error_on_every_measurement():
    model = aer_noise_model(NoiseSpec(readout0=0.05, readout1=0.2))
    circuit = QuantumCircuit(1, 1)
    circuit.x(0)
    circuit.measure(0, 0)
    shots = 20000
    counts = AerSimulator(noise_model=model, seed_simulator=3).run(circuit, shots=shots).result().get_counts()
    read0 = counts.get("0", 0) / shots
    assert abs(read0 - 0.2) < 4 * math.sqrt(0.2 * 0.8 / shots)


def test_noise_from_fake_torino_reads_its_target():
    noise = noise_from_backend("fake_torino", CFG)
    target = resolve_target("fake_torino").backend.target
    readout = statistics.median(p.error for p in target["measure"].values() if p is not None and p.error is not None)
    assert noise.readout0 == noise.readout1 == pytest.approx(readout, rel=1e-12)
    assert 0 < noise.neuron < 0.2 and 0 < noise.damping < 0.2 and 0 < noise.dephasing < 0.5 and 0 < noise.write < 0.01
    assert noise.source.startswith("fake_torino: ") and "two-qubit gates" in noise.source
    # the damping is exp(-duration / T1) over the neuron's duration, both named in the source
    duration_us = float(noise.source.split(" two-qubit gates and ")[1].split(" us")[0])
    t1_us = float(noise.source.split("T1 ")[1].split(" us")[0])
    assert noise.damping == pytest.approx(1 - math.exp(-duration_us / t1_us), rel=0.02)  # the source rounds


def test_noise_grows_with_the_neurons_gates():
    small = noise_from_backend("fake_torino", CFG)
    big = noise_from_backend("fake_torino", QRNNConfig(input_width=1, workspace=3, stages=1, order=2, degree=2))
    assert big.neuron > small.neuron and big.damping > small.damping


def test_noise_needs_a_device():
    with pytest.raises(ValueError, match="is not a device"):
        noise_from_backend("generic", CFG)


def test_aer_model_is_empty_without_noise():
    model = aer_noise_model(NoiseSpec())
    assert model.is_ideal()
    assert not np.any([model.to_dict()["errors"]])
