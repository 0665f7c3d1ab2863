"""Classical baselines: the paper's parameter counts, the network against a numpy implementation
of its equations, gradients against finite differences, training, checkpoints, resume, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine import reference_loss_offset
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.models.classical import ClassicalConfig, ClassicalEngine
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.train import resume, train

torch = pytest.importorskip("torch")


def test_the_papers_dna_baselines_have_888_parameters():
    # paper (Fig. 9): LSTM hidden 10 and RNN hidden 22 on one-hot 8-dim inputs, 888 parameters each
    assert ClassicalConfig("lstm", 10, 3).num_parameters == 888
    assert ClassicalConfig("rnn", 22, 3).num_parameters == 888
    for kind, hidden in (("lstm", 10), ("rnn", 22)):
        assert ClassicalEngine(ClassicalConfig(kind, hidden, 3))._params[0].dtype == torch.float64


def _numpy_network(config: ClassicalConfig, params: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """The LSTM / Elman RNN equations written out (torch's gate order i, f, g, o), softmax output."""
    n, h = config.num_outcomes, config.hidden
    gates = 4 if config.kind == "lstm" else 1
    sizes = [(gates * h, n), (gates * h, h), (gates * h,), (gates * h,), (n, h), (n,)]
    parts, at = [], 0
    for shape in sizes:
        size = int(np.prod(shape))
        parts.append(params[at : at + size].reshape(shape))
        at += size
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = parts
    batch, steps = inputs.shape
    hidden, cell = np.zeros((batch, h)), np.zeros((batch, h))
    out = np.empty((batch, steps, n))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(steps):
        x = np.eye(n)[inputs[:, t]]
        pre = x @ w_ih.T + b_ih + hidden @ w_hh.T + b_hh
        if config.kind == "lstm":
            i, f, g, o = np.split(pre, 4, axis=1)
            cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(g)
            hidden = sigmoid(o) * np.tanh(cell)
        else:
            hidden = np.tanh(pre)
        logits = hidden @ w_out.T + b_out
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out[:, t] = e / e.sum(axis=1, keepdims=True)
    return out


@pytest.mark.parametrize(("kind", "hidden"), [("lstm", 4), ("rnn", 5)])
def test_distributions_equal_the_written_out_equations_and_the_loss_its_definition(kind, hidden):
    config = ClassicalConfig(kind, hidden, 2)
    rng = np.random.default_rng(3)
    params = rng.normal(0, 0.5, config.num_parameters)
    inputs, targets = rng.integers(0, 4, (3, 6)), rng.integers(0, 4, (3, 6))
    scored = np.array([False, True, False, True, True, True])
    engine = ClassicalEngine(config)
    expected = _numpy_network(config, params, inputs)
    result = engine.simulate(params, inputs, targets)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-12, rtol=0)
    p = expected[:, scored]
    y = targets[:, scored]
    lse = np.log(np.exp(p).sum(axis=2))
    by_hand = float((lse - np.take_along_axis(p, y[..., None], 2)[..., 0]).mean()) - reference_loss_offset(2)
    assert engine.loss(params, inputs, targets, scored) == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_gradient_equals_central_finite_differences(kind):
    config = ClassicalConfig(kind, 3, 1)
    rng = np.random.default_rng(1)
    params = rng.normal(0, 0.7, config.num_parameters)
    inputs, targets = rng.integers(0, 2, (2, 5)), rng.integers(0, 2, (2, 5))
    scored = np.array([True, False, True, True, True])
    engine = ClassicalEngine(config)
    _, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    h, fd = 1e-6, np.empty_like(params)
    for i in range(len(params)):
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (engine.loss(up, inputs, targets, scored) - engine.loss(down, inputs, targets, scored)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    assert np.abs(grad).max() > 1e-3


SMALL = dict(dataset="simple-seq", model="lstm", hidden=8, batch_size=4, learning_rate=0.05, steps=120,
             validate_every=20, seed=3)


def test_an_lstm_learns_a_task_and_round_trips_through_its_checkpoint(tmp_path):
    summary = train(TrainSettings(**SMALL), tmp_path / "run", callbacks=[], test=True)
    assert summary["model"] == "lstm" and summary["num_parameters"] == ClassicalConfig("lstm", 8, 3).num_parameters
    assert summary["best_validation_loss"] < 0.02 and summary["test_expected_accuracy"] > 0.9
    best = load_checkpoint(tmp_path / "run" / "best.npz")
    assert best.config == ClassicalConfig("lstm", 8, 3)
    out = CliRunner().invoke(main, ["eval", str(tmp_path / "run" / "best.npz"), "--json"])
    assert out.exit_code == 0, out.output
    assert '"loss": ' + repr(summary["test_loss"]) in out.output


def test_an_interrupted_baseline_resumes_onto_the_same_trajectory(tmp_path):
    train(TrainSettings(**{**SMALL, "steps": 40}), tmp_path / "straight", callbacks=[])
    train(TrainSettings(**{**SMALL, "steps": 20}), tmp_path / "pieces", callbacks=[])
    resume(tmp_path / "pieces" / "final.npz", steps=40, callbacks=[])
    np.testing.assert_allclose(load_checkpoint(tmp_path / "pieces" / "final.npz").parameters,
                               load_checkpoint(tmp_path / "straight" / "final.npz").parameters, atol=1e-12, rtol=0)


def test_what_a_baseline_cannot_do_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="trains in one process in float64 on the CPU"):
        TrainSettings(**SMALL, workers=2).validate()
    with pytest.raises(ValueError, match="trains in one process"):
        TrainSettings(**SMALL, backend="aer").validate()
    with pytest.raises(ValueError, match="Unknown model 'gru'"):
        TrainSettings(**{**SMALL, "model": "gru"}).validate()
    train(TrainSettings(**{**SMALL, "steps": 2}), tmp_path / "run", callbacks=[])
    ck = str(tmp_path / "run" / "best.npz")
    out = CliRunner().invoke(main, ["eval", ck, "--backend", "aer"])
    assert out.exit_code == 2 and "has no circuit to run on backend 'aer'" in out.output
    out = CliRunner().invoke(main, ["build", "--checkpoint", ck])
    assert out.exit_code == 2 and "no quantum circuit" in out.output


def test_without_torch_the_baseline_names_the_extra(monkeypatch):
    from qrnn_qiskit.core import optionals

    monkeypatch.setattr(optionals, "available", lambda module: module != "torch")
    with pytest.raises(QRNNError, match=r"--model lstm needs the optional package torch.*qrnn-qiskit\[torch\]"):
        ClassicalEngine(ClassicalConfig("lstm", 10, 3))


def test_initialisation_is_torchs_uniform_bound():
    params = ClassicalConfig("rnn", 16, 2).initial_parameters(seed=0)
    assert np.abs(params).max() <= 1 / math.sqrt(16) and np.abs(params).max() > 0.9 / math.sqrt(16)


def test_score_all_steps_puts_every_step_in_the_loss_as_the_papers_dna_baselines(tmp_path):
    from qrnn_qiskit.data.base import every_step_scored
    from qrnn_qiskit.data.registry import get_dataset

    dna = get_dataset("dna", sentence_length=8)
    view = every_step_scored(dna)
    assert dna.scored().sum() == 1 and view.scored().all() and view.scored().shape == (7,)
    targets = dna.split("validate").engine_arrays()[1]
    assert dna.ignored(targets).any() and not view.ignored(targets).any()
    np.testing.assert_array_equal(view.split("validate").inputs, dna.split("validate").inputs)

    settings = dict(dataset="dna", sentence_length=8, model="lstm", hidden=6, batch_size=8, learning_rate=0.05,
                    steps=3, validate_every=3, validation_size=0, seed=5)
    runs = {flag: train(TrainSettings(**settings, score_all_steps=flag), tmp_path / str(flag), callbacks=[])
            for flag in (False, True)}
    final = load_checkpoint(tmp_path / "True" / "final.npz")
    x, y = dna.split("validate").engine_arrays()
    engine = ClassicalEngine(final.config)
    everything = engine.loss(final.parameters, x, y, np.ones(7, bool))
    last = engine.loss(final.parameters, x, y, dna.scored())
    assert runs[True]["best_validation_loss"] == pytest.approx(everything, rel=1e-12)
    assert abs(everything - last) > 1e-3  # the two masks give different numbers on this model
    assert TrainSettings.from_dict(load_checkpoint(tmp_path / "True" / "final.npz").meta["settings"]).data.score_all_steps


def test_cross_entropy_on_the_logits_is_minus_log_p_with_its_gradient(tmp_path):
    """``loss="cross-entropy"``: -log p[target] over the scored steps, by hand from the network's
    distributions; its gradient against central differences; training records it as the validation
    loss; the QRNN refuses it."""
    from qrnn_qiskit.evaluation.exact import evaluate_exact

    config = ClassicalConfig("lstm", 5, 2)
    engine = ClassicalEngine(config)
    rng = np.random.default_rng(4)
    params = config.initial_parameters(seed=rng)
    inputs, targets = rng.integers(0, 4, (3, 6)), rng.integers(0, 4, (3, 6))
    scored = np.array([False, True, False, True, True, False])
    probs = engine.simulate(params, inputs, targets).probabilities
    by_hand = -np.log(np.take_along_axis(probs[:, scored], targets[:, scored][..., None], axis=2)).mean()
    loss, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored, loss="cross-entropy")
    assert loss == pytest.approx(by_hand, rel=1e-13)
    assert abs(loss - engine.loss(params, inputs, targets, scored)) > 0.1  # not the reference loss
    h = 1e-6
    for i in rng.choice(config.num_parameters, 6, replace=False):
        step = np.zeros_like(params)
        step[i] = h
        fd = (engine.loss(params + step, inputs, targets, scored, loss="cross-entropy")
              - engine.loss(params - step, inputs, targets, scored, loss="cross-entropy")) / (2 * h)
        assert grad[i] == pytest.approx(fd, abs=1e-8)

    settings = dict(dataset="dna", sentence_length=6, model="lstm", hidden=5, batch_size=8, learning_rate=0.05,
                    steps=3, validate_every=3, validation_size=0, seed=2, loss="cross-entropy")
    summary = train(TrainSettings(**settings), tmp_path / "ce", callbacks=[])
    final = load_checkpoint(tmp_path / "ce" / "final.npz")
    from qrnn_qiskit.data.registry import get_dataset

    dna = get_dataset("dna", sentence_length=6)
    x, y = dna.split("validate").engine_arrays()
    p = ClassicalEngine(final.config).simulate(final.parameters, x, y).probabilities[:, dna.scored()]
    want = -np.log(np.take_along_axis(p, y[:, dna.scored()][..., None], axis=2)).mean()
    assert summary["best_validation_loss"] == pytest.approx(want, rel=1e-12)
    assert evaluate_exact(final.config, final.parameters, dna, split="validate",
                          loss="cross-entropy")["loss"] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="loss 'cross-entropy' trains the classical baselines"):
        TrainSettings(dataset="dna", loss="cross-entropy").validate()
    with pytest.raises(ValueError, match="Unknown loss 'mse'"):
        TrainSettings(dataset="dna", model="lstm", loss="mse").validate()
    with pytest.raises(ValueError, match="loss must be one of 'reference', 'cross-entropy', got 'mse'"):
        engine.loss_and_gradient(params, inputs, targets, scored, loss="mse")
    with pytest.raises(ValueError, match="loss must be one of 'reference', 'cross-entropy', got 'mse'"):
        evaluate_exact(final.config, final.parameters, dna, split="validate", loss="mse")
