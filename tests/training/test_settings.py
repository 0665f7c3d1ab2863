"""Training settings: four groups built from flat names, stored flat, checked once."""

from __future__ import annotations

import pytest

from qrnn_qiskit.training.settings import OptimizerSettings, TrainSettings

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2, learning_rate=0.05, seed=5)


def test_settings_from_older_runs_and_bad_keys():
    old = {**SMALL, "initial_bias": 1.2, "steps": 3}
    assert TrainSettings.from_dict(old).model.bias == 1.2
    with pytest.raises(ValueError, match=r"Unknown training settings \['colour'\]"):
        TrainSettings.from_dict({**SMALL, "colour": "blue"})
    with pytest.raises(ValueError, match="Unknown backend 'ibm_torino'; expected one of exact, aer"):
        TrainSettings(**SMALL, backend="ibm_torino").validate()
    with pytest.raises(ValueError, match="shots must be a positive integer, got 0"):
        TrainSettings(**SMALL, shots=0).validate()


def test_flat_names_fill_the_groups_and_round_trip():
    from qrnn_qiskit.training.settings import ModelSettings, RunSettings

    settings = TrainSettings(dataset="digits01", workspace=7, model="qrnn", optimizer="lbfgs", learning_rate=0.02,
                             lr_schedule=[[10, 0.01]], steps=12, neuron_mode="amplify")
    assert settings.data.dataset == "digits01" and settings.model.workspace == 7 and settings.model.kind == "qrnn"
    assert settings.optimizer.optimizer == "lbfgs" and settings.optimizer.schedule(10) == 0.01
    assert settings.run.steps == 12 and settings.run.neuron_mode == "amplify:5"  # normalised spelling
    flat = settings.to_dict()
    assert flat["model"] == "qrnn" and flat["workspace"] == 7 and "kind" not in flat
    assert TrainSettings.from_dict(flat) == settings
    assert settings.get("learning_rate") == 0.02 and settings.replace(steps=20).run.steps == 20
    grouped = TrainSettings(model=ModelSettings(workspace=4), run=RunSettings(steps=3), seed=9)
    assert (grouped.model.workspace, grouped.run.steps, grouped.run.seed) == (4, 3, 9)
    with pytest.raises(TypeError, match="run must be a RunSettings, got ModelSettings"):
        TrainSettings(run=ModelSettings())


def test_each_group_checks_its_values_when_made():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        TrainSettings(batch_size=0)
    with pytest.raises(ValueError, match=r"grad_clip must be a norm >= 0 \(0 turns clipping off\), got -0.5"):
        OptimizerSettings(grad_clip=-0.5)
    with pytest.raises(ValueError, match="lr_schedule needs increasing steps"):
        TrainSettings(lr_schedule=[[5, 0.1], [2, 0.2]])
    with pytest.raises(ValueError, match="precision 'float32' needs engine 'cpu' or 'gpu'"):
        TrainSettings(engine="numpy", precision="float32")
    with pytest.raises(ValueError, match="unscored must be one of postselect, measure, got 'ignore'"):
        TrainSettings(unscored="ignore")
    with pytest.raises(ValueError, match="noise rates look like neuron=0.01"):
        TrainSettings(noise="depolarizing")
    with pytest.raises(ValueError, match="noise readout0 must lie in"):
        TrainSettings(noise="readout=0.7")
    with pytest.raises(ValueError, match="unscored 'measure' and noise None train a QRNN .* got model 'lstm'"):
        TrainSettings(model="lstm", unscored="measure")
    assert TrainSettings(noise="readout=0.02,neuron=0.010").run.noise == "neuron=0.01,readout0=0.02,readout1=0.02"
    assert TrainSettings(noise="fake_torino").run.noise == "fake_torino"  # read when the model is known
    with pytest.raises(ValueError, match="Training settings must be a mapping"):
        TrainSettings.from_dict(["steps", 3])


def test_stop_at_loss_and_timeout_must_be_finite():
    with pytest.raises(ValueError, match="stop_at_loss must be a finite validation loss, got nan"):
        TrainSettings(stop_at_loss=float("nan"))
    with pytest.raises(ValueError, match="timeout must be positive seconds, got inf"):
        TrainSettings(timeout=float("inf"))
