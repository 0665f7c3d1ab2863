"""The optimisers: each step lowers a loss, they follow torch.optim step for step, and each owns its
learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.training.optim import clip_grad_norm, make_optimizer

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2, learning_rate=0.05, seed=5)


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "lbfgs"])
def test_optimizer_step_lowers_the_loss(name):
    cfg = QRNNConfig(input_width=3, workspace=2, stages=1, order=1, degree=2)
    engine = ExactEngine(cfg)
    params = cfg.initial_parameters(seed=0)
    seq = np.array([[0, 1, 2, 3, 0, 1]])
    inputs, targets, scored = seq[:, :-1], seq[:, 1:], np.ones(5, bool)
    loss, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    opt = make_optimizer(name, cfg.num_parameters, 0.01)
    if opt.uses_closure:
        new, first = opt.step_closure(params, lambda v: engine.loss_and_gradient(v, inputs, targets, scored)[:2])
        assert first == pytest.approx(loss)
    else:
        new = opt.step(params, grad)
    assert engine.loss(new, inputs, targets, scored) < loss


def test_lbfgs_solves_a_quadratic():
    a, b = np.diag([1.0, 10.0, 100.0]), np.array([1.0, -2.0, 0.5])
    opt = make_optimizer("lbfgs", 3, 1.0)
    x = np.zeros(3)
    for _ in range(3):
        x, _ = opt.step_closure(x, lambda v: (0.5 * v @ a @ v - b @ v, a @ v - b))
    np.testing.assert_allclose(x, np.linalg.solve(a, b), atol=1e-5)


def test_adam_matches_torch_formula():
    # one AdamW step from zero state moves every coordinate by lr * sign(grad) (bias-corrected)
    opt = make_optimizer("adam", 3, 0.1)
    np.testing.assert_allclose(opt.step(np.zeros(3), np.array([2.0, -0.5, 1e-3])), [-0.1, 0.1, -0.1 * 1e-3 / (1e-3 + 1e-8)])


def test_clip():
    grad, norm = clip_grad_norm(np.array([3.0, 4.0]), 0.5)
    assert norm == 5.0 and np.linalg.norm(grad) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("name,lr,decay", [("adam", 0.05, 0.0), ("adam", 0.05, 0.1), ("sgd", 0.002, 0.0),
                                            ("rmsprop", 0.01, 0.0), ("lbfgs", 0.5, 0.0)])
def test_optimizers_follow_torch(name, lr, decay):
    """Step for step the same iterates as torch.optim (the reference's optimisers), on Rosenbrock."""
    torch = pytest.importorskip("torch")

    def value_and_grad(v):
        x, y = v[0::2], v[1::2]
        value = float(np.sum(100.0 * (y - x**2) ** 2 + (1 - x) ** 2))
        grad = np.empty_like(v)
        grad[0::2] = -400.0 * x * (y - x**2) - 2 * (1 - x)
        grad[1::2] = 200.0 * (y - x**2)
        return value, grad

    start = np.array([-1.2, 1.0, 0.3, -0.4])
    ours = make_optimizer(name, start.size, lr, decay)
    tensor = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    classes = {"adam": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop,
               "lbfgs": lambda p, lr, weight_decay: torch.optim.LBFGS(p, lr=lr, history_size=40, max_iter=20)}
    theirs = classes[name]([tensor], lr=lr, weight_decay=decay)

    def closure():
        theirs.zero_grad()
        x, y = tensor[0::2], tensor[1::2]
        value = torch.sum(100.0 * (y - x**2) ** 2 + (1 - x) ** 2)
        value.backward()
        return value

    params = start.copy()
    for _ in range(15):
        if ours.uses_closure:
            params, _ = ours.step_closure(params, value_and_grad)
        else:
            params = ours.step(params, value_and_grad(params)[1])
        theirs.step(closure)
        np.testing.assert_allclose(params, tensor.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_an_optimiser_owns_its_schedule_and_resumes_it():
    """A schedule is read from the optimiser's own step counter: two steps at 0.1, then 0.01, and a
    copy restored from the state after two steps continues at 0.01 (as a resumed run does)."""
    from qrnn_qiskit.training.optim import PiecewiseConstant

    grad = np.array([2.0, -0.5, 1.0])
    scheduled = make_optimizer("sgd", 3, PiecewiseConstant(0.1, [[2, 0.01]]))
    params = np.zeros(3)
    rates = []
    for _ in range(4):
        rates.append(scheduled.lr)
        params = scheduled.step(params, grad)
    assert rates == [0.1, 0.1, 0.01, 0.01]
    np.testing.assert_allclose(params, -(0.1 + 0.1 + 0.01 + 0.01) * grad, rtol=1e-15)
    resumed = make_optimizer("sgd", 3, PiecewiseConstant(0.1, [[2, 0.01]]))
    resumed.load_state({"t": np.array([2.0])})
    assert resumed.lr == 0.01


@pytest.mark.parametrize("schedule, message", [([[0, 0.1]], "steps >= 1"), ([[5, 0.1], [3, 0.2]], "increasing steps"),
                                               ([[5, -1.0]], "positive learning rates"), ("5:0.1", "list of \\[step")])
def test_bad_schedules_say_what_is_expected(schedule, message):
    from qrnn_qiskit.training.optim import PiecewiseConstant

    with pytest.raises(ValueError, match=message):
        PiecewiseConstant(0.1, schedule)
