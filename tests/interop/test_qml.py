"""The qiskit-machine-learning adapter: its network's Jacobian equals finite differences, and a
NeuralNetworkClassifier on it minimises the loss qrnn train minimises (the same value and
gradient at any weights) and fits a memory task."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("qiskit_machine_learning")

from qiskit_machine_learning.algorithms import NeuralNetworkClassifier  # noqa: E402
from qiskit_machine_learning.optimizers import L_BFGS_B  # noqa: E402

from qrnn_qiskit.core.config import QRNNConfig  # noqa: E402
from qrnn_qiskit.data.registry import get_dataset  # noqa: E402
from qrnn_qiskit.engine import ExactEngine  # noqa: E402
from qrnn_qiskit.qml import QRNNNetwork, ReferenceLoss  # noqa: E402

CFG = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=2)


def _memory_task(tmp_path):
    """Every 3-bit sequence, labelled by its first bit: a labelled csv, as a user would write it."""
    rows = [(split, bits[0], bits) for split in ("train", "validate", "test") for bits in itertools.product((0, 1), repeat=3)]
    path = tmp_path / "first-bit.csv"
    path.write_text("split,label,x1,x2,x3\n" + "".join(f"{s},{y},{','.join(map(str, x))}\n" for s, y, x in rows))
    return get_dataset(str(path))


def test_jacobian_equals_finite_differences():
    network = QRNNNetwork(CFG, 4)
    weights = CFG.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=3)
    x = np.array([[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0]], dtype=float)
    _, jacobian = network.backward(x, weights)
    h = 1e-6
    fd = np.stack([(network.forward(x, weights + h * e) - network.forward(x, weights - h * e)) / (2 * h)
                   for e in np.eye(weights.size)], axis=-1)
    assert jacobian.shape == (3, 2, CFG.num_parameters) and np.abs(jacobian).max() > 1e-2
    np.testing.assert_allclose(jacobian, fd, atol=1e-8, rtol=0)


def test_classifier_minimises_qrnn_trains_loss_and_fits(tmp_path):
    dataset = _memory_task(tmp_path)
    inputs, targets = dataset.split("train").engine_arrays()
    labels = targets[:, -1]
    network = QRNNNetwork(CFG, inputs.shape[1], teacher=0)  # the pixel-like steps postselected on 0
    start = CFG.initial_parameters(bias_spread=0.1, weights_spread=0.3, unitaries_spread=0.3, seed=1)
    classifier = NeuralNetworkClassifier(network, loss=ReferenceLoss(), one_hot=True, optimizer=L_BFGS_B(maxiter=200),
                                         initial_point=start)
    objective = classifier._create_objective(*classifier._validate_input(inputs.astype(float), labels))
    engine = ExactEngine(CFG)
    for weights in (start, start[::-1].copy()):
        loss, grad, _ = engine.loss_and_gradient(weights, inputs, targets, dataset.scored())  # qrnn train's
        assert objective.objective(weights) == pytest.approx(loss, abs=1e-12)
        np.testing.assert_allclose(objective.gradient(weights), grad, atol=1e-10, rtol=0)
    classifier.fit(inputs.astype(float), labels)
    fitted = classifier.weights
    assert classifier.score(inputs.astype(float), labels) == 1.0
    assert engine.loss(fitted, inputs, targets, dataset.scored()) < 0.5 * engine.loss(start, inputs, targets, dataset.scored())


def test_bad_teacher_says_what_is_expected():
    with pytest.raises(ValueError, match=r"teacher must be 'next' or a token in 0\.\.1, got 5"):
        QRNNNetwork(CFG, 3, teacher=5)


def test_torch_connector_runs_on_it():
    """qiskit-machine-learning's TorchConnector wraps the network: its forward is the network's and
    its weight gradient of a sum of outputs is the Jacobian summed the same way (to float32's
    precision: the connector's tensors are float32)."""
    torch = pytest.importorskip("torch")
    from qiskit_machine_learning.connectors import TorchConnector

    network = QRNNNetwork(CFG, 3)
    weights = CFG.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=4)
    x = np.array([[0, 1, 1], [1, 0, 0]], dtype=float)
    connector = TorchConnector(network, initial_weights=weights)
    out = connector(torch.as_tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), network.forward(x, weights), atol=1e-6, rtol=0)
    out[:, 1].sum().backward()
    grad = next(iter(connector.parameters())).grad.numpy()
    expected = network.backward(x, weights)[1][:, 1].sum(axis=0)
    assert np.abs(expected).max() > 1e-2
    np.testing.assert_allclose(grad, expected, atol=1e-6, rtol=0)
