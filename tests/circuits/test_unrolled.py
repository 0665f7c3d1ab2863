"""UnrolledSequence: the figures and the OpenQASM it derives from the steps equal those of the whole
circuit (Qiskit's own depth, the instruction-by-instruction counts, the exporter over every op)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit import ParameterVector

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.export import export_qasm, load_qasm
from qrnn_qiskit.circuits.report import logical_report
from qrnn_qiskit.circuits.unrolled import UnrolledSequence
from qrnn_qiskit.core.config import QRNNConfig

CFG = QRNNConfig(input_width=2, workspace=3, stages=2, order=2, degree=2)
SMALL = QRNNConfig(input_width=2, workspace=1, stages=1, order=2, degree=1)  # amplify:3 is 36 blocks a neuron
RNG = np.random.default_rng(11)
BITS = RNG.integers(0, 2, 5 * CFG.input_width).astype(float)
WEIGHTS = RNG.normal(size=CFG.num_parameters)


def _variant(name: str, cfg: QRNNConfig, length: int) -> dict:
    bits = BITS[: length * cfg.input_width]
    weights = WEIGHTS[: cfg.num_parameters]
    return {"symbolic": {}, "bound-bits": {"inputs": bits}, "bound-weights": {"weights": weights},
            "bound-both": {"inputs": bits, "weights": weights}, "barriers": {"insert_barriers": True},
            "mc": {"synthesis": "mc"}}[name]



def _files(tmp_path, sequence, circuit, fmt="qasm3"):
    a, b = tmp_path / "steps.qasm", tmp_path / "whole.qasm"
    sequence.export(a, fmt=fmt)
    export_qasm(circuit, b, fmt=fmt)
    return (a.read_bytes(), (tmp_path / "steps.qasm.json").read_bytes()), \
        (b.read_bytes(), (tmp_path / "whole.qasm.json").read_bytes())


@pytest.mark.parametrize("mode", ["postselect", "rus:2", "amplify:3"])
@pytest.mark.parametrize("variant", ["symbolic", "bound-bits", "bound-weights", "bound-both", "barriers", "mc"])
def test_figures_and_qasm3_equal_the_whole_circuit(tmp_path, mode, variant):
    cfg, length = (SMALL, 3) if mode.startswith("amplify") else (CFG, 5)
    options = {"neuron_mode": mode, **_variant(variant, cfg, length)}
    sequence = UnrolledSequence(cfg, length, **options)
    whole = qrnn_sequence(cfg, length, **options)
    assert sequence.logical_report() == logical_report(whole)
    assert whole.depth() == sequence.logical_report()["depth"]  # Qiskit's own depth, not the module's
    steps, reference = _files(tmp_path, sequence, whole)
    assert steps == reference
    assert _files(tmp_path, sequence, sequence.circuit)[1] == reference  # the lazily built circuit is the same


def test_depth_composes_across_steps_of_different_inputs():
    # steps whose X gates differ: the max-plus composition must follow each step's own paths
    bits = np.array([1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0], dtype=float)
    for length in (1, 2, 7):
        sequence = UnrolledSequence(CFG, length, inputs=bits[: 2 * length], synthesis="multiplexer")
        whole = qrnn_sequence(CFG, length, inputs=bits[: 2 * length], synthesis="multiplexer")
        assert sequence.logical_report()["depth"] == whole.depth()
    assert len(sequence._steps) == 4  # one step per distinct bit pair: 10, 00, 11, 01


def test_bound_circuit_exports_qasm2_like_the_whole(tmp_path):
    sequence = UnrolledSequence(CFG, 3, inputs=BITS[:6], weights=WEIGHTS)
    whole = qrnn_sequence(CFG, 3, inputs=BITS[:6], weights=WEIGHTS)
    steps, reference = _files(tmp_path, sequence, whole, fmt="qasm2")
    assert steps == reference


def test_reloaded_export_binds_by_list_like_the_original(tmp_path):
    sequence = UnrolledSequence(SMALL, 2)
    loaded = load_qasm(sequence.export(tmp_path / "s.qasm"))
    values = RNG.normal(size=sequence.circuit.num_parameters)
    original = sequence.circuit.assign_parameters(values)
    reloaded = loaded.assign_parameters(values)
    assert [p.name for p in loaded.parameters] == [p.name for p in sequence.circuit.parameters]
    assert sorted(original.count_ops().items()) == sorted(reloaded.count_ops().items())


@pytest.mark.parametrize("options", [{"noise_markers": True}, {"inputs": ParameterVector("bits", 6)}],
                         ids=["noise-markers", "own-input-vector"])
def test_outside_the_step_form_falls_back_to_the_whole_circuit(tmp_path, options):
    sequence = UnrolledSequence(CFG, 3, **options)
    whole = qrnn_sequence(CFG, 3, **options)
    assert sequence.logical_report() == logical_report(whole)
    steps, reference = _files(tmp_path, sequence, whole)
    assert steps == reference


def test_bad_arguments_are_refused_like_qrnn_sequence():
    with pytest.raises(ValueError, match="positive integer"):
        UnrolledSequence(CFG, 0)
    with pytest.raises(ValueError, match="0 or 1"):
        UnrolledSequence(CFG, 1, inputs=[0.0, 0.5])
