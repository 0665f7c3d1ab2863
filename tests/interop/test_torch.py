"""The PyTorch module: torch's optimiser on it follows `qrnn train`, and its gradients for any loss
are the engine's vector-Jacobian products, checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qrnn_qiskit.core.config import QRNNConfig  # noqa: E402
from qrnn_qiskit.engine import ExactEngine  # noqa: E402
from qrnn_qiskit.torch import QRNNModule, reference_loss  # noqa: E402
from qrnn_qiskit.training.settings import TrainSettings  # noqa: E402
from qrnn_qiskit.training.state import TrainState  # noqa: E402
from qrnn_qiskit.workflows.train import train  # noqa: E402

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2,
             learning_rate=0.05, seed=5, initial_weights_spread=0.3, initial_unitaries_spread=0.3)


def test_twenty_adam_steps_end_where_qrnn_train_ends(tmp_path):
    """The same settings, initial parameters and batches: torch.optim.Adam (weight decay 0, as the
    reference's AdamW) with the reference loss and clip_grad_norm_(0.5) ends on qrnn train's
    parameters to 1e-10."""
    settings = TrainSettings(**SMALL, optimizer="adam", steps=20, validate_every=20)
    train(settings, tmp_path / "run", callbacks=[])
    trained = np.load(tmp_path / "run" / "final.npz")["parameters"]

    dataset = settings.load_dataset()
    state = TrainState.initial(settings, dataset)  # the same initial draw and batch stream
    model = QRNNModule(state.config, state.parameters)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.optimizer.learning_rate)
    scored = dataset.scored()
    for _ in range(20):
        inputs, targets = dataset.batch(settings.data.batch_size, state.rng, "train").engine_arrays()
        optimiser.zero_grad()
        loss = reference_loss(model(inputs, targets).probabilities, targets, scored)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimiser.step()
    assert np.abs(trained - state.parameters).max() > 1e-2  # the runs moved
    np.testing.assert_allclose(model.weights.detach().numpy(), trained, atol=1e-10, rtol=0)


@pytest.mark.parametrize("spec", [dict(), dict(neuron_mode="keep", unscored="measure", noise="neuron=0.02,readout=0.03")])
def test_custom_loss_gradient_equals_finite_differences(spec):
    """A classical head on the distributions (a linear map, then a squared error): torch's
    gradient in the weights equals central differences of the same loss."""
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=7)
    rng = np.random.default_rng(1)
    inputs, targets = rng.integers(0, 4, (3, 4)), rng.integers(0, 4, (3, 4))
    head = torch.as_tensor(rng.normal(size=(4, 2)))
    model = QRNNModule(cfg, params, **spec)

    def loss_of(out):
        return ((out.probabilities[:, -2:] @ head) ** 2).sum() + out.probabilities[:, 0, 1].sum()

    out = model(inputs, targets)
    loss_of(out).backward()
    grad = model.weights.grad.numpy()
    engine = ExactEngine(cfg, model.engine.spec)
    measure = np.full(4, True) if engine.spec.mixed else None

    def value(x):
        probs = torch.as_tensor(engine.simulate(x, inputs, targets, measure=measure).probabilities)
        return float(loss_of(type(out)(probs, out.acceptance)))

    h = 1e-6
    fd = np.array([(value(params + h * e) - value(params - h * e)) / (2 * h) for e in np.eye(params.size)])
    assert np.abs(grad).max() > 1e-2
    np.testing.assert_allclose(grad, fd, atol=1e-7, rtol=0)
    assert out.acceptance.shape == (3, 4) and not out.acceptance.requires_grad


def test_reference_loss_is_the_engines():
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=2)
    rng = np.random.default_rng(3)
    inputs, targets = rng.integers(0, 2, (4, 5)), rng.integers(0, 2, (4, 5))
    scored = np.array([False, True, False, True, True])
    model = QRNNModule(cfg, params)
    loss = reference_loss(model(inputs, targets).probabilities, targets, scored)
    loss.backward()
    exact_loss, exact_grad, _ = ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    assert loss.item() == pytest.approx(exact_loss, abs=1e-12)
    np.testing.assert_allclose(model.weights.grad.numpy(), exact_grad, atol=1e-12, rtol=0)


def test_bad_parameters_say_what_is_expected():
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    with pytest.raises(ValueError, match=rf"parameters must be {cfg.num_parameters} numbers for this model, got shape \(3,\)"):
        QRNNModule(cfg, np.zeros(3))


def test_the_guides_example_trains():
    """docs/guide.md's PyTorch example runs as written and fits simple-bits (a classical head on
    the last step's distribution; simple-bits' next bit is determined, so the loss can vanish)."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide.md").read_text()
    code = guide[guide.index("## In PyTorch"):].split("```python")[1].split("```")[0]
    scope: dict = {}
    exec(compile(code, "guide.md", "exec"), scope)
    assert scope["step"] == 49 and scope["loss"].item() < 0.05
