"""Aer runner: sampled shots agree with the exact engine; gradients from shots; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.shift import joint_probabilities
from qrnn_qiskit.exceptions import QRNNError
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_training import AerGradient
from qrnn_qiskit.training import Checkpoint, get_dataset, save_checkpoint


@pytest.mark.parametrize("order", [1, 2])
def test_shots_agree_with_the_exact_engine(order):
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=order, degree=2)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=2)
    inputs, targets = np.array([[1, 3], [2, 0]]), np.array([[0, 1], [3, 2]])
    shots = 20000
    estimate = AerRunner(shots=shots, seed=5).sample(cfg, params, inputs).joint_probabilities(targets, 4)
    exact = joint_probabilities(ExactEngine(cfg).simulate(params, inputs, targets))
    # every joint probability is a binomial frequency: within 5 standard deviations
    sigma = np.sqrt(exact * (1 - exact) / shots) + 1.0 / shots
    assert np.all(np.abs(estimate - exact) <= 5 * sigma), np.max(np.abs(estimate - exact) / sigma)


def test_rus_accepts_more_and_agrees_for_basis_inputs():
    # one step, no work stage: every neuron sees basis-state sources, where rus is exact
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = np.array([0.6, -0.4, 0.0, 0.3])  # the output neuron ignores the workspace (phi = 0)
    inputs = np.array([[1]])
    exact = ExactEngine(cfg).simulate(params, inputs, np.array([[1]]))
    post = AerRunner(shots=20000, seed=1).sample(cfg, params, inputs)
    rus = AerRunner(shots=20000, seed=1, neuron_mode="rus:2").sample(cfg, params, inputs)
    assert rus.accepted().mean() > post.accepted().mean()
    ok = rus.accepted()[0]
    p_one = (rus.tokens[0, ok, 0] == 1).mean()
    assert p_one == pytest.approx(exact.probabilities[0, 0, 1], abs=5 * np.sqrt(0.25 / ok.sum()))


def test_parameter_shift_from_shots_matches_the_exact_gradient():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = np.array([0.6, -0.4, 0.9, 0.3])
    inputs, targets, scored = np.array([[1], [0]]), np.array([[1], [0]]), np.ones(1, bool)
    _, exact, _ = ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    gradient = AerGradient(cfg, AerRunner(shots=40000, seed=3), "param-shift")
    loss, estimate = gradient(params, inputs, targets, scored)
    np.testing.assert_allclose(estimate, exact, atol=0.025)
    assert loss == pytest.approx(ExactEngine(cfg).loss(params, inputs, targets, scored), abs=0.01)


def test_spsa_is_an_unbiased_direction():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = np.array([0.6, -0.4, 0.9, 0.3])
    inputs, targets, scored = np.array([[1], [0]]), np.array([[1], [0]]), np.ones(1, bool)
    _, exact, _ = ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    gradient = AerGradient(cfg, AerRunner(shots=20000, seed=3), "spsa", seed=1)
    estimates = np.array([gradient(params, inputs, targets, scored)[1] for _ in range(12)])
    assert np.dot(estimates.mean(axis=0), exact) > 0


def test_eval_on_aer(tmp_path):
    cfg = QRNNConfig(input_width=3, workspace=1, stages=0, order=1, degree=1)
    params = cfg.initial_parameters(seed=1)
    path = save_checkpoint(tmp_path / "m.npz", Checkpoint(cfg, params, {"dataset": "simple-seq", "settings": {"sentence_length": 3}}))
    result = CliRunner().invoke(main, ["eval", str(path), "--backend", "aer", "--shots", "4000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["backend"] == "aer" and report["accepted_shots"] > 0
    total = report["sequences"] * report["shots"]
    assert abs(report["acceptance"] - report["expected_acceptance"]) <= 5 * np.sqrt(report["expected_acceptance"] / total)
    assert abs(report["accuracy"] - report["expected_accuracy"]) < 0.1
    assert "expected_acceptance_note" not in report
    # rus retries accept more shots than postselection; the exact figure is labelled a lower bound
    result = CliRunner().invoke(
        main, ["eval", str(path), "--backend", "aer", "--shots", "2000", "--neuron-mode", "rus:2", "--json"]
    )
    assert result.exit_code == 0, result.output
    rus = json.loads(result.output)
    assert "lower bound for rus" in rus["expected_acceptance_note"]
    assert rus["acceptance"] > report["acceptance"]


class TestErrors:
    def test_bad_options(self):
        with pytest.raises(ValueError, match="Unknown Aer device 'TPU'"):
            AerRunner(device="TPU")
        with pytest.raises(ValueError, match="shots must be a positive integer, got 0"):
            AerRunner(shots=0)
        with pytest.raises(ValueError, match="Unknown noise model 'depolarizing'"):
            AerRunner(noise="depolarizing")
        with pytest.raises(ValueError, match="Unknown fake backend 'fake_nowhere'"):
            AerRunner(noise="fake_nowhere")
        with pytest.raises(ValueError, match="Unknown gradient method 'adjoint'"):
            AerGradient(QRNNConfig(input_width=1, workspace=1, degree=1), AerRunner(), "adjoint")

    def test_gpu_without_gpu_support(self):
        from qiskit_aer import AerSimulator

        if "GPU" in AerSimulator().available_devices():
            pytest.skip("this machine has Aer GPU support")
        with pytest.raises(QRNNError, match="device GPU needs the qiskit-aer-gpu package"):
            AerRunner(device="GPU")

    def test_zero_acceptance_says_what_to_expect(self):
        cfg = QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=1)
        params = cfg.initial_parameters(seed=1)
        runner = AerRunner(shots=8, seed=1)
        with pytest.raises(QRNNError, match=r"No shot was accepted out of 16: the exact engine expects an acceptance of .* per shot.*neuron_mode rus"):
            runner.evaluate(cfg, params, get_dataset("simple-seq", sentence_length=6))
        rus = AerRunner(shots=1, seed=1, neuron_mode="rus:1")
        with pytest.raises(QRNNError, match=r"in postselect mode \(rus accepts more.*more retries \(neuron_mode rus:R\)"):
            rus.evaluate(cfg, params, get_dataset("simple-seq", sentence_length=12))
