"""Checkpoints and the reference import: round trip, corrupt and foreign files, the 98.6 % figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qrnn_qiskit.models.reference import import_reference_npz, state_dict_to_parameters


def _checkpoint() -> Checkpoint:
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, degree=2)
    return Checkpoint(cfg, cfg.initial_parameters(seed=1), {"dataset": "simple-seq"}, {"optimizer/m": np.arange(3.0)})


def test_round_trip(tmp_path):
    ck = _checkpoint()
    path = save_checkpoint(tmp_path / "a.npz", ck)
    back = load_checkpoint(path)
    assert back.config == ck.config
    np.testing.assert_array_equal(back.parameters, ck.parameters)
    np.testing.assert_array_equal(back.state["optimizer/m"], [0.0, 1.0, 2.0])
    assert back.meta["dataset"] == "simple-seq" and back.meta["version"] == 1


def test_truncated_file_is_rejected_and_nothing_changes(tmp_path):
    path = save_checkpoint(tmp_path / "a.npz", _checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert path.read_bytes() == data[: len(data) // 2]


def test_newer_version_and_foreign_files(tmp_path):
    path = save_checkpoint(tmp_path / "a.npz", _checkpoint())
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(CheckpointError, match="version 99; this qrnn-qiskit reads versions up to 1"):
        load_checkpoint(tmp_path / "new.npz")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a qrnn-qiskit checkpoint"):
        load_checkpoint(tmp_path / "foreign.npz")
    np.savez(tmp_path / "ref.npz", **{"module.cell.input_layer.0.θ": np.zeros(())})
    with pytest.raises(CheckpointError, match="qrnn import-reference"):
        load_checkpoint(tmp_path / "ref.npz")
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")


def test_state_dict_mapping_follows_the_layout():
    # I=1, W=2, S=1, d=1: sources per neuron = 2, D = 2
    state = {
        "module.cell.input_layer.0.φ": np.array([1.0, 2.0]), "module.cell.input_layer.0.θ": np.array(3.0),
        "module.cell.input_layer.1.φ": np.array([4.0, 5.0]), "module.cell.input_layer.1.θ": np.array(6.0),
        "module.cell.kernel_layer.0.0.θs": np.array([70.0, 80.0]),
        "module.cell.kernel_layer.0.1.φ": np.array([7.0, 8.0]), "module.cell.kernel_layer.0.1.θ": np.array(9.0),
        "module.cell.kernel_layer.0.2.φ": np.array([10.0, 11.0]), "module.cell.kernel_layer.0.2.θ": np.array(12.0),
        "module.cell.output_layer.0.φ": np.array([13.0, 14.0]), "module.cell.output_layer.0.θ": np.array(15.0),
    }
    cfg, params = state_dict_to_parameters(state, order=1)
    assert (cfg.input_width, cfg.workspace, cfg.stages, cfg.order, cfg.degree) == (1, 2, 1, 1, 1)
    np.testing.assert_array_equal(params, list(range(1, 16)) + [70.0, 80.0])


def test_bad_state_dicts():
    with pytest.raises(CheckpointError, match=r"Unexpected keys \['module.rnn.weight'\]"):
        state_dict_to_parameters({"module.rnn.weight": np.zeros(3)})
    with pytest.raises(CheckpointError, match="for no degree d"):
        state_dict_to_parameters({
            "cell.input_layer.0.φ": np.zeros(5), "cell.input_layer.0.θ": np.zeros(()),
            "cell.output_layer.0.φ": np.zeros(5), "cell.output_layer.0.θ": np.zeros(()),
        })


@pytest.mark.slow
def test_reference_checkpoint_accuracy(shared_dir, tmp_path):
    """The reference's mnist01 model, imported and evaluated on the full test split: 98.6 +- 0.5 %."""
    ck = import_reference_npz(shared_dir / "reference/checkpoints/mnist01-reference.npz")
    assert ck.config.num_parameters == 1212 and ck.config.order == 2
    assert ck.config.bias == pytest.approx(1.570796)
    path = save_checkpoint(tmp_path / "ref.npz", ck)
    ck = load_checkpoint(path)
    dataset = get_dataset("mnist01", data_dir=shared_dir / "data/rvqe-mnist")
    result = evaluate_exact(ck.config, ck.parameters, dataset, split="test", seed=0)
    assert result["sequences"] == 2115
    assert result["accuracy"] == pytest.approx(0.986, abs=0.005)
    assert result["expected_accuracy"] == pytest.approx(0.986, abs=0.005)
    assert result["character_error_rate"] == pytest.approx(1 - result["accuracy"])


@pytest.mark.parametrize("content", [b"garbage", b"\x80\x04\x95 a pickle stream", b""])
def test_garbage_is_not_a_checkpoint_and_pickles_are_never_suggested(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"is not a qrnn checkpoint: a checkpoint is an \.npz archive") as info:
        load_checkpoint(path)
    assert "pickle" not in str(info.value).lower() and "allow_pickle" not in str(info.value)


def test_an_npz_of_objects_is_refused_unread(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, parameters=np.array([{"x": 1}], dtype=object), meta=np.zeros(1))
    with pytest.raises(CheckpointError, match="holds pickled objects, which are never loaded") as info:
        load_checkpoint(path)
    assert "allow_pickle" not in str(info.value)
