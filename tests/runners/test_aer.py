"""Aer runner: sampled shots agree with the exact engine; gradients from shots; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.shift import joint_probabilities
from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_gradient import AerGradient
from qrnn_qiskit.workflows.evaluate import evaluate_sampled


@pytest.mark.slow
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


GRAD_CFG = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
GRAD_PARAMS = np.array([0.6, -0.4, 0.9, 0.3])
GRAD_DATA = (np.array([[1], [0]]), np.array([[1], [0]]), np.ones(1, bool))


def _loss_noise(shots: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The exact gradient, and a bound on the standard deviation of one shot estimate of
    <Q, dL/dQ> (the loss's first-order noise): per shot the score sum_t max_y |dL/dQ[b, t, y]|
    bounds the contribution of sequence b, so its mean over ``shots`` shots has std <= score/sqrt(shots)."""
    from qrnn_qiskit.engine.shift import loss_gradient_from_joint

    engine = ExactEngine(GRAD_CFG)
    inputs, targets, scored = GRAD_DATA
    _, exact, result = engine.loss_and_gradient(GRAD_PARAMS, inputs, targets, scored)
    _, dl_dq = loss_gradient_from_joint(joint_probabilities(result), targets, scored, GRAD_CFG.input_width)
    per_row = np.sqrt((np.abs(dl_dq).max(axis=2).sum(axis=1) ** 2).sum()) / np.sqrt(shots)
    return exact, per_row, dl_dq


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["per-step", "per-shot"])
def test_parameter_shift_from_shots_matches_the_exact_gradient(sampling):
    from qrnn_qiskit.engine.shift import shift_plan

    shots = 8000  # sigma <= 0.07 of the largest component: a wrong gradient fails
    exact, per_row, _ = _loss_noise(shots)
    # each shifted row is an independent shot estimate: component i has variance sum_n c_n^2 per_row^2
    _, coeffs, owners = shift_plan(ExactEngine(GRAD_CFG), GRAD_PARAMS, 1)
    variance = np.zeros_like(exact)
    np.add.at(variance, owners, (coeffs * per_row) ** 2)
    sigma = np.sqrt(variance)
    assert np.all(sigma < 0.2 * np.abs(exact).max())  # the bound is tight enough to see a wrong gradient
    gradient = AerGradient(GRAD_CFG, AerRunner(shots=shots, seed=3), "param-shift", sampling=sampling)
    assert gradient.sampling == sampling
    loss, estimate = gradient(GRAD_PARAMS, *GRAD_DATA)
    assert np.all(np.abs(estimate - exact) <= 5 * sigma), (estimate - exact) / sigma
    assert loss == pytest.approx(ExactEngine(GRAD_CFG).loss(GRAD_PARAMS, *GRAD_DATA), abs=5 * per_row)


@pytest.mark.slow
def test_spsa_is_unbiased_per_component():
    """E[g_i] = dL/d(theta_i) + O(c^2); one draw has variance <= sum_{j != i} g_j^2 (the other
    components' share through the random signs) + 2 per_row^2 / (2c)^2 (the shot noise of L+ and L-)."""
    shots, draws = 3000, 40  # 5 sigma stays below 0.6 of the largest component
    exact, per_row, _ = _loss_noise(shots)
    gradient = AerGradient(GRAD_CFG, AerRunner(shots=shots, seed=3), "spsa", seed=1)
    estimates = np.array([gradient(GRAD_PARAMS, *GRAD_DATA)[1] for _ in range(draws)])
    c_min = gradient.spsa_c / draws**gradient.spsa_gamma  # the smallest perturbation used
    others = (exact**2).sum() - exact**2
    sigma = np.sqrt((others + 2 * per_row**2 / (2 * c_min) ** 2) / draws)
    assert np.all(np.abs(estimates.mean(axis=0) - exact) <= 5 * sigma), (estimates.mean(axis=0) - exact) / sigma
    assert 5 * sigma.max() < 2 * np.abs(exact).max()  # a flipped sign of the largest component would fail


def test_eval_on_aer(tmp_path):
    cfg = QRNNConfig(input_width=3, workspace=1, stages=0, order=1, degree=1)
    params = cfg.initial_parameters(seed=1)
    path = save_checkpoint(tmp_path / "m.npz", Checkpoint(cfg, params, {"dataset": "simple-seq", "settings": {"sentence_length": 3}}))
    result = CliRunner().invoke(main, ["eval", str(path), "--backend", "aer", "--shots", "4000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "aer" and report["accepted_shots"] > 0
    total = report["sequences"] * report["shots"]
    assert abs(report["acceptance"] - report["expected_acceptance"]) <= 5 * np.sqrt(report["expected_acceptance"] / total)
    assert abs(report["accuracy"] - report["expected_accuracy"]) < 0.1
    # rus retries accept more shots than postselection, as the engine's rus channel says
    result = CliRunner().invoke(
        main, ["eval", str(path), "--backend", "aer", "--shots", "2000", "--neuron-mode", "rus:2", "--json"]
    )
    assert result.exit_code == 0, result.output
    rus = json.loads(result.stdout)
    assert rus["acceptance"] > report["acceptance"]
    total = rus["sequences"] * rus["shots"]
    p = rus["expected_acceptance"]
    assert abs(rus["acceptance"] - p) <= 5 * np.sqrt(p * (1 - p) / total)


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

    @pytest.mark.slow
    def test_zero_acceptance_says_what_to_expect(self):
        cfg = QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=1)
        params = cfg.initial_parameters(seed=1)
        runner = AerRunner(shots=8, seed=1)
        with pytest.raises(QRNNError, match=r"No shot was accepted out of 16: the exact engine expects an acceptance of .* per shot.*neuron_mode rus"):
            evaluate_sampled(runner, cfg, params, get_dataset("simple-seq", sentence_length=6), submit_anyway=True)
        rus = AerRunner(shots=1, seed=1, neuron_mode="rus:1")
        with pytest.raises(QRNNError, match=r"in postselect mode \(rus accepts more.*more retries \(neuron_mode rus:R\)"):
            evaluate_sampled(rus, cfg, params, get_dataset("simple-seq", sentence_length=12), submit_anyway=True)

    def test_hopeless_sampling_is_refused_before_a_shot(self, monkeypatch):
        """The engine's expected accepted shots a sequence (shots x its acceptance, computed here by
        hand from the engine's per-sequence acceptance) below one: refused with the figure, and the
        runner is never asked to sample."""
        from qrnn_qiskit.engine import ExactEngine

        cfg = QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=1)
        params = cfg.initial_parameters(seed=1)
        dataset = get_dataset("simple-seq", sentence_length=6)
        inputs, targets = dataset.split("test").engine_arrays()
        result = ExactEngine(cfg).simulate(params, inputs, targets)
        ignored = dataset.ignored(targets)
        per_sequence = np.prod(result.neuron_acceptance, axis=1) * np.prod(
            np.where(ignored, result.outcome_probability, 1.0), axis=1)
        runner = AerRunner(shots=8, seed=1)
        monkeypatch.setattr(runner, "sample", lambda *a, **k: pytest.fail("sampled a hopeless evaluation"))
        expected = 8 * per_sequence.mean()
        assert expected < 1
        with pytest.raises(QRNNError, match=rf"expects {expected:.3g} accepted shots a sequence \(8 shots x .*submit_anyway=True"):
            evaluate_sampled(runner, cfg, params, dataset)


def test_zero_weights_keep_every_multiplexer_matrix():
    # a zero weight repeats a block's matrices; Qiskit's UCGate would shorten its list by default
    # (mux_simp) while keeping the qubit count, and Aer refuses such a multiplexer
    cfg = QRNNConfig(input_width=1, workspace=2, stages=0, order=1, degree=2)
    params = np.zeros(cfg.num_parameters)
    inputs = np.array([[1, 0]])
    shots = AerRunner(shots=4000, seed=2).sample(cfg, params, inputs)
    exact = ExactEngine(cfg).simulate(params, inputs, inputs)
    ok = shots.accepted(inputs, postselect=np.array([True, False]))[0]
    first = shots.neurons_ok[0, :, 0].mean()
    assert first == pytest.approx(exact.neuron_acceptance[0, 0], abs=5 * np.sqrt(0.25 / 4000))
    assert ok.sum() > 0


def test_sampling_reports_its_progress(caplog):
    """Three progress lines: building, what is sampled (sequences x shots, the circuit's size), done."""
    caplog.set_level("INFO", logger="qrnn_qiskit")
    AerRunner(shots=50, seed=1).sample(GRAD_CFG, GRAD_PARAMS, np.array([[1, 0], [0, 1], [1, 1]]))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("aer (CPU)")]
    assert lines[0] == "aer (CPU): building and compiling the 2-step circuit (3 qubits) ..."
    assert lines[1].startswith("aer (CPU): 3 sequence(s) x 50 shots (") and "operations a shot" in lines[1]
    assert lines[2].startswith("aer (CPU): sampled in ") and len(lines) == 3
