"""OpenQASM export: round trip with names restored, format errors, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.export import export_qasm, load_qasm
from qrnn_qiskit.core.config import QRNNConfig


@pytest.mark.parametrize("synthesis", ["mc", "multiplexer", "phase-polynomial"])
def test_qasm3_round_trip_same_operations_and_distributions(tmp_path, synthesis):
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
    circuit = qrnn_sequence(cfg, 2, synthesis=synthesis)
    path = export_qasm(circuit, tmp_path / "qrnn.qasm")
    loaded = load_qasm(path)
    assert sorted(p.name for p in loaded.parameters) == sorted(p.name for p in circuit.parameters)
    assert loaded.metadata["qrnn"] == circuit.metadata["qrnn"]
    assert loaded.num_qubits == circuit.num_qubits and loaded.num_clbits == circuit.num_clbits
    # same operations up to the names Qiskit gives the custom multi-controlled gates
    def normalise(counts):
        out = {}
        for name, n in counts.items():
            key = "ccry" if name.startswith("ccry") else name
            out[key] = out.get(key, 0) + n
        return out

    assert normalise(loaded.count_ops()) == normalise(circuit.count_ops())
    rng = np.random.default_rng(0)
    values = {p.name: float(v) for p, v in zip(circuit.parameters, rng.normal(0, 1, circuit.num_parameters))}
    for p in circuit.parameters:
        if p.name.startswith("x"):
            values[p.name] = float(rng.integers(0, 2))
    a = circuit.assign_parameters({p: values[p.name] for p in circuit.parameters})
    b = loaded.assign_parameters({p: values[p.name] for p in loaded.parameters})
    targets = [1, 2]
    ra, rb = run_postselected(a, targets, 2), run_postselected(b, targets, 2)
    np.testing.assert_allclose(rb.probabilities, ra.probabilities, atol=1e-10)
    np.testing.assert_allclose(rb.neuron_acceptance, ra.neuron_acceptance, atol=1e-10)


def test_qasm2_for_bound_circuits(tmp_path):
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    params = np.random.default_rng(1).normal(0, 1, cfg.num_parameters)
    circuit = qrnn_sequence(cfg, 2, weights=params, inputs=[1.0, 0.0])
    path = export_qasm(circuit, tmp_path / "bound.qasm", fmt="qasm2")
    assert path.read_text().startswith("OPENQASM 2.0;")
    loaded = load_qasm(path)
    ra = run_postselected(circuit, [1, 0], 1)
    rb = run_postselected(loaded, [1, 0], 1)
    np.testing.assert_allclose(rb.probabilities, ra.probabilities, atol=1e-10)


class TestErrors:
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)

    def test_qasm2_refuses_free_parameters(self, tmp_path):
        with pytest.raises(ValueError, match=r"OpenQASM 2 cannot declare free parameters.*fmt='qasm3'"):
            export_qasm(qrnn_sequence(self.cfg, 1), tmp_path / "a.qasm", fmt="qasm2")
        assert not (tmp_path / "a.qasm").exists()

    def test_unknown_format(self, tmp_path):
        with pytest.raises(ValueError, match=r"Unknown export format 'qasm4'"):
            export_qasm(qrnn_sequence(self.cfg, 1), tmp_path / "a.qasm", fmt="qasm4")

    def test_missing_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            export_qasm(qrnn_sequence(self.cfg, 1), tmp_path / "nope" / "a.qasm")

    def test_load_garbage(self, tmp_path):
        bad = tmp_path / "bad.qasm"
        bad.write_text("OPENQASM 3.0;\nqubit[2] q;\nfoo q[0];\n")
        with pytest.raises(ValueError, match="is not valid OpenQASM"):
            load_qasm(bad)
        with pytest.raises(FileNotFoundError, match="No OpenQASM file"):
            load_qasm(tmp_path / "missing.qasm")

    def test_mismatched_sidecar(self, tmp_path):
        path = export_qasm(qrnn_sequence(self.cfg, 1), tmp_path / "a.qasm")
        sidecar = tmp_path / "a.qasm.json"
        data = json.loads(sidecar.read_text())
        data["parameters"]["_zz_9_"] = "zz[9]"
        sidecar.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=r"names inputs \['_zz_9_'\].*do not belong together"):
            load_qasm(path)


def test_rus_circuit_round_trip(tmp_path):
    from branching_reference import run_branches

    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = np.array([0.4, -0.3, 0.8, 0.2])
    circuit = qrnn_sequence(cfg, 1, weights=params, inputs=[1.0], neuron_mode="rus:2")
    loaded = load_qasm(export_qasm(circuit, tmp_path / "rus.qasm"))
    assert loaded.count_ops()["if_else"] == circuit.count_ops()["if_else"]
    state = np.zeros(2**circuit.num_qubits, dtype=complex)
    state[0] = 1
    a, b = run_branches(circuit, state), run_branches(loaded, state)
    order_a, order_b = np.lexsort(a.bits.T), np.lexsort(b.bits.T)
    np.testing.assert_array_equal(a.bits[order_a], b.bits[order_b])
    np.testing.assert_allclose(a.probs[order_a], b.probs[order_b], atol=1e-12)


def test_direct_writer_is_used_and_declares_plain_names(tmp_path):
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=2)
    text = export_qasm(qrnn_sequence(cfg, 1, synthesis="mc"), tmp_path / "a.qasm").read_text()
    assert "input float[64] w_0;" in text and "ctrl(1) @" not in text
    assert "ctrl(2) @ ry(w_" in text  # two-control rotations use the modifier, not gate definitions
    assert "gate " not in text


class TestQiskitExporterFallback:
    """Circuits outside the QRNN gate set go through Qiskit's exporter."""

    def test_non_identifier_parameter_names_round_trip(self, tmp_path):
        pytest.importorskip("qiskit_qasm3_import")
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.quantum_info import Operator

        from qrnn_qiskit.circuits.export import _dumps_qasm3

        circuit = QuantumCircuit(2)
        circuit.ry(Parameter("θ"), 0)
        circuit.crx(Parameter("a b"), 0, 1)
        assert _dumps_qasm3(circuit) is None  # 'a b' is no identifier: the direct writer declines
        path = export_qasm(circuit, tmp_path / "u.qasm")
        names = json.loads((tmp_path / "u.qasm.json").read_text())["parameters"]
        assert sorted(names.values()) == ["a b", "θ"]  # every declared input maps back to its parameter
        back = load_qasm(path)
        assert sorted(p.name for p in back.parameters) == ["a b", "θ"]
        values = {"θ": 0.3, "a b": -1.1}
        bind = lambda c: c.assign_parameters({p: values[p.name] for p in c.parameters})  # noqa: E731
        assert Operator(bind(back)).equiv(Operator(bind(circuit)))

    def test_exporter_refusal_is_a_value_error_and_writes_nothing(self, tmp_path):
        from qiskit import QuantumCircuit

        circuit = QuantumCircuit(1)
        circuit.initialize([0, 1], 0)
        with pytest.raises(ValueError, match="cannot be written as OpenQASM 3 .*non-unitary"):
            export_qasm(circuit, tmp_path / "i.qasm")
        assert not list(tmp_path.iterdir())


def test_reloaded_circuit_binds_a_list_as_the_original(tmp_path):
    """``w[10]`` must not bind before ``w[2]``: the reloaded circuit's parameters are the elements
    of rebuilt vectors, so a list binds the same angles as on the exported circuit."""
    from qiskit.circuit import ParameterVectorElement

    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=2)
    assert cfg.num_parameters > 10  # indices past 9 sort wrongly by name
    circuit = qrnn_sequence(cfg, 1, inputs=[1.0])
    loaded = load_qasm(export_qasm(circuit, tmp_path / "w.qasm"))
    assert all(isinstance(p, ParameterVectorElement) for p in loaded.parameters)
    assert [p.name for p in loaded.parameters] == [p.name for p in circuit.parameters]
    values = np.random.default_rng(3).normal(0, 1, circuit.num_parameters)
    a, b = circuit.assign_parameters(values), loaded.assign_parameters(values)
    ra, rb = run_postselected(a, [1], 1), run_postselected(b, [1], 1)
    np.testing.assert_allclose(rb.probabilities, ra.probabilities, atol=1e-10)
    # the order matters: the same values in another order give other probabilities
    assert not np.allclose(ra.probabilities, run_postselected(circuit.assign_parameters(values[::-1]), [1], 1).probabilities)


def test_a_malformed_vectors_field_names_the_sidecar(tmp_path):
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    path = export_qasm(qrnn_sequence(cfg, 1), tmp_path / "v.qasm")
    sidecar = path.with_name(path.name + ".json")
    data = json.loads(sidecar.read_text())
    data["vectors"] = ["w", 3]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"v\.qasm\.json has a malformed 'vectors' field: expected vector names mapped"):
        load_qasm(path)
