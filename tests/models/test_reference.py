"""Import of the reference implementation's torch checkpoints (.tar), and its failure without torch."""

from __future__ import annotations

import argparse
import collections

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.core.optionals import MissingOptionalDependency
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.models.reference import import_reference_npz, read_reference


def reference_state_dict(config: QRNNConfig, params: np.ndarray) -> dict[str, np.ndarray]:
    """Our flat parameters laid out under the reference's state-dict keys (digest 1.2 and 3.5)."""
    per = config.num_neuron_weights + 1
    width, work, stages = config.input_width, config.workspace, config.stages
    neurons = [params[i * per:(i + 1) * per] for i in range(work + stages * work + width)]
    unitaries = params[len(neurons) * per:].reshape(stages, work)
    state = {}

    def put(prefix, block):
        state[f"module.cell.{prefix}.φ"] = block[:-1]
        state[f"module.cell.{prefix}.θ"] = np.array(block[-1])

    for w in range(work):
        put(f"input_layer.{w}", neurons[w])
    for s in range(stages):
        state[f"module.cell.kernel_layer.{s}.0.θs"] = unitaries[s]
        for w in range(work):
            put(f"kernel_layer.{s}.{1 + w}", neurons[work + s * work + w])
    for i in range(width):
        put(f"output_layer.{i}", neurons[work + stages * work + i])
    return state


def write_reference_tar(path, state, *, legacy=False, **args):
    """A checkpoint shaped like the reference main.py's save_checkpoint (dict + Namespace + RNG state)."""
    torch = pytest.importorskip("torch")
    model = collections.OrderedDict((k, torch.tensor(v, dtype=torch.float32)) for k, v in state.items())
    namespace = argparse.Namespace(**{"dataset": "simple-seq", "tag": "test", "port": 12355, **args})
    store = {
        "epoch": 330,
        "best_validation_loss": torch.tensor(0.00098),
        "best_character_error_rate": 0.0,
        "model_state_dict": model,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.05, "params": list(range(len(model)))}]},
        "_original_args": namespace,
        "_checkpoint_prefix": "-test-simple-seq--a1b2c3",
        "_torch_rng_state": torch.get_rng_state(),
    }
    torch.save(store, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture
def small_model():
    config = QRNNConfig(input_width=2, workspace=3, stages=2, order=1, degree=2)
    params = config.initial_parameters(bias_spread=0.3, weights_spread=0.3, unitaries_spread=0.3, seed=5)
    # the reference stores float32 tensors: compare against the float32-rounded values
    return config, params.astype(np.float32).astype(np.float64)


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint-x.tar"
    path.write_bytes(b"\x80\x02\x8a\x0alegacy torch file")
    monkeypatch.setattr(optionals, "available", lambda module: module != "torch")
    with pytest.raises(MissingOptionalDependency, match=r"pip install 'qrnn-qiskit\[torch\]'"):
        read_reference(path)
    result = CliRunner().invoke(main, ["import-reference", str(path)])
    assert result.exit_code != 0 and "qrnn-qiskit[torch]" in result.output
    assert not (tmp_path / "checkpoint-x.qrnn.npz").exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_tar_import_matches_the_npz_import(tmp_path, small_model, legacy):
    config, params = small_model
    state = reference_state_dict(config, params)
    np.savez(tmp_path / "ref.npz", **state)
    from_npz = import_reference_npz(tmp_path / "ref.npz", order=1)
    tar = write_reference_tar(tmp_path / "ref.tar", state, legacy=legacy, workspace=3, stages=2, order=1, degree=2,
                              initial_bias=1.570796, learning_rate=0.05)
    from_tar = read_reference(tar)  # order from the stored Namespace, not the default 2
    assert from_tar.config == QRNNConfig(2, 3, 2, 1, 2, bias=1.570796)  # the stored initial_bias
    assert from_npz.config == QRNNConfig(2, 3, 2, 1, 2)
    np.testing.assert_array_equal(from_tar.parameters, params)
    np.testing.assert_array_equal(from_tar.parameters, from_npz.parameters)
    settings = from_tar.meta["reference_settings"]
    assert settings["epoch"] == 330 and settings["best_validation_loss"] == pytest.approx(0.00098)
    assert settings["learning_rate"] == 0.05 and "port" not in settings
    assert from_tar.meta["dataset"] == "simple-seq"
    assert read_reference(tar, order=3).config.order == 3  # --order overrides the stored one


def test_cli_converts_a_tar(tmp_path, small_model):
    config, params = small_model
    tar = write_reference_tar(tmp_path / "checkpoint-run.tar", reference_state_dict(config, params),
                              workspace=3, stages=2, order=1, degree=2)
    result = CliRunner().invoke(main, ["import-reference", str(tar)])
    assert result.exit_code == 0, result.output
    assert "I=2 W=3 S=2 order=1 degree=2" in result.output
    converted = load_checkpoint(tmp_path / "checkpoint-run.qrnn.npz")
    np.testing.assert_array_equal(converted.parameters, params)


def test_unsafe_pickles_are_refused_unrun(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "checkpoint-evil.tar"
    torch.save({"model_state_dict": {"module.cell.input_layer.0.φ": Payload()}}, path)
    with pytest.raises(CheckpointError, match="refused without running it"):
        read_reference(path)
    assert not marker.exists()


def test_damaged_and_foreign_tar_files(tmp_path, small_model):
    torch = pytest.importorskip("torch")
    config, params = small_model
    good = write_reference_tar(tmp_path / "good.tar", reference_state_dict(config, params))
    data = good.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_reference(tmp_path / "cut.tar")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "foreign.tar")
    with pytest.raises(CheckpointError, match=r"holds no model_state_dict \(found \['weights'\]\)"):
        read_reference(tmp_path / "foreign.tar")
    torch.save({"model_state_dict": {"module.rnn.weight": torch.zeros(3)}}, tmp_path / "lstm.tar")
    with pytest.raises(CheckpointError, match="Unexpected keys"):
        read_reference(tmp_path / "lstm.tar")
    liar = write_reference_tar(tmp_path / "liar.tar", reference_state_dict(config, params), workspace=5)
    with pytest.raises(CheckpointError, match="workspace=5 but the tensors imply workspace=3"):
        read_reference(liar)
    with pytest.raises(CheckpointError, match="No reference model at"):
        read_reference(tmp_path / "absent.tar")


def test_reference_mnist01_model_through_a_tar(shared_dir, tmp_path):
    """The shared reference model, written as the reference would have saved it, imports identically."""
    npz = shared_dir / "reference/checkpoints/mnist01-reference.npz"
    from_npz = import_reference_npz(npz)
    with np.load(npz) as archive:
        state = {k: archive[k] for k in archive.files}
    tar = write_reference_tar(tmp_path / "mnist01.tar", state, legacy=True, dataset="mnist01", workspace=8, stages=2,
                              order=2, degree=2, initial_bias=1.570796)
    from_tar = read_reference(tar)
    assert from_tar.config == from_npz.config and from_tar.config.num_parameters == 1212
    np.testing.assert_array_equal(from_tar.parameters, from_npz.parameters)


def test_import_refuses_to_overwrite_and_names_bad_sidecars(tmp_path, small_model):
    config, params = small_model
    np.savez(tmp_path / "ref.npz", **reference_state_dict(config, params))
    out = tmp_path / "out.npz"
    out.write_bytes(b"precious")
    result = CliRunner().invoke(main, ["import-reference", str(tmp_path / "ref.npz"), "-o", str(out), "--order", "1"])
    assert result.exit_code == 1 and "exists; pass --overwrite to replace it" in result.output
    assert out.read_bytes() == b"precious"
    result = CliRunner().invoke(main, ["import-reference", str(tmp_path / "ref.npz"), "-o", str(out), "--order", "1",
                                       "--overwrite"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(load_checkpoint(out).parameters, params)
    for text, message in (("[1, 2]", r"holds a JSON list; expected an object"),
                          ('{"order": "two"}', r"has order 'two'; expected an integer from 1 to 16"),
                          ('{"order": 1e9}', r"has order 1000000000.0; expected an integer from 1 to 16"),
                          ('{"initial_bias": null}', r"has initial_bias None; expected a finite number")):
        (tmp_path / "ref.json").write_text(text)
        with pytest.raises(CheckpointError, match=r"The sidecar .*ref\.json " + message):
            import_reference_npz(tmp_path / "ref.npz")
