"""First-order optimisers with PyTorch's update rules, on flat numpy vectors, and their schedules.

``adam`` is the reference's ``AdamW(lr, weight_decay=0)`` by default; ``sgd`` and ``rmsprop`` use
torch's defaults (RMSprop: ``alpha=0.99``, ``eps=1e-8``); ``lbfgs`` is ``torch.optim.LBFGS`` with
``history_size=40``, ``max_iter=20`` and no line search, as the reference used it. State is a dict
of arrays so it can be stored in a checkpoint and resumed exactly.

An optimiser owns its learning rate: a number, or a schedule (a function of the number of steps
taken, as optax's ``learning_rate=schedule``), which it reads before each update from its own
step counter, so a resumed run continues the schedule where it stopped.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OPTIMIZERS", "Optimizer", "PiecewiseConstant", "checked_schedule", "clip_grad_norm", "make_optimizer",
           "parse_lr_schedule"]

OPTIMIZERS = ("adam", "sgd", "rmsprop", "lbfgs")


def parse_lr_schedule(text: str | None) -> list[list] | None:
    """``"390:0.002,1000:0.001"`` -> ``[[390, 0.002], [1000, 0.001]]`` (``None`` stays ``None``).

    Raises:
        ValueError: for anything not of the form ``STEP:LR[,STEP:LR...]``.
    """
    if text is None:
        return None
    try:
        return [[int(step), float(lr)] for step, lr in (item.split(":") for item in text.split(","))]
    except ValueError:
        raise ValueError(f"expected STEP:LR[,STEP:LR...] such as 390:0.002, got {text!r}.") from None


def checked_schedule(schedule) -> list[list]:
    """``[[step, lr], ...]`` with increasing steps >= 1 and positive rates, or a ValueError."""
    try:
        pairs = [[int(step), float(lr)] for step, lr in schedule]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lr_schedule must be a list of [step, learning_rate] pairs, got {schedule!r}.") from exc
    steps = [step for step, _ in pairs]
    if not pairs or steps != sorted(set(steps)) or steps[0] < 1 or any(not (lr > 0 and math.isfinite(lr)) for _, lr in pairs):
        raise ValueError(
            f"lr_schedule needs increasing steps >= 1 and positive learning rates, got {schedule!r} "
            "(for example [[390, 0.002], [1000, 0.001]]; on the command line 390:0.002,1000:0.001)."
        )
    return pairs


class PiecewiseConstant:
    """A learning rate of ``initial`` that becomes ``lr`` once ``step`` steps are done, for each
    ``[step, lr]`` of ``changes`` (increasing steps)."""

    def __init__(self, initial: float, changes=()) -> None:
        self.initial = float(initial)
        self.changes = checked_schedule(changes) if len(changes) else []

    def __call__(self, done: int) -> float:
        rate = self.initial
        for step, lr in self.changes:
            if done >= step:
                rate = lr
        return rate

    def __repr__(self) -> str:
        return f"PiecewiseConstant({self.initial}, {self.changes})"


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``grad`` to norm ``max_norm`` if larger (``torch.nn.utils.clip_grad_norm_``)."""
    norm = float(np.linalg.norm(grad))
    if max_norm > 0 and norm > max_norm:
        return grad * (max_norm / (norm + 1e-6)), norm
    return grad, norm


class Optimizer:
    """Base class: ``step(params, grad) -> new params``; ``state`` holds arrays and a counter.

    Optimisers that need several evaluations per step (L-BFGS) set ``uses_closure`` and implement
    ``step_closure(params, closure) -> (params, loss)`` with ``closure(params) -> (loss, grad)``.
    """

    uses_closure = False

    def __init__(self, size: int, lr, weight_decay: float = 0.0) -> None:
        self.schedule = lr if callable(lr) else PiecewiseConstant(lr)
        first = self.schedule(0)
        if not (math.isfinite(first) and first > 0):
            raise ValueError(f"learning_rate must be a positive number, got {first!r}.")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}.")
        self.weight_decay = float(weight_decay)
        self.state: dict[str, np.ndarray] = {"t": np.zeros(1)}
        self.size = size

    @property
    def lr(self) -> float:
        """The learning rate of the next update (the schedule at the steps taken so far)."""
        return self.schedule(int(self.state["t"][0]))

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self.state) - set(state))
        if missing:
            raise ValueError(f"Optimizer state lacks {missing}; it was saved by another optimizer.")
        for key in self.state:
            value = np.asarray(state[key], dtype=np.float64)
            if value.shape != self.state[key].shape:
                raise ValueError(f"Optimizer state '{key}' has shape {value.shape}, expected {self.state[key].shape}.")
            self.state[key] = value.copy()


class AdamW(Optimizer):
    def __init__(self, size: int, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(size, lr, weight_decay)
        self.betas, self.eps = betas, eps
        self.state.update(m=np.zeros(size), v=np.zeros(size))

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        st = self.state
        lr = self.lr
        st["t"] += 1
        t = float(st["t"][0])
        params = params * (1 - lr * self.weight_decay)
        st["m"] = b1 * st["m"] + (1 - b1) * grad
        st["v"] = b2 * st["v"] + (1 - b2) * grad * grad
        # torch: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        denom = np.sqrt(st["v"]) / math.sqrt(1 - b2**t) + self.eps
        return params - (lr / (1 - b1**t)) * st["m"] / denom


class SGD(Optimizer):
    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        lr = self.lr
        self.state["t"] += 1
        if self.weight_decay:
            grad = grad + self.weight_decay * params
        return params - lr * grad


class RMSprop(Optimizer):
    def __init__(self, size: int, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(size, lr, weight_decay)
        self.alpha, self.eps = alpha, eps
        self.state.update(square_avg=np.zeros(size))

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        lr = self.lr
        self.state["t"] += 1
        if self.weight_decay:
            grad = grad + self.weight_decay * params
        sq = self.state["square_avg"] = self.alpha * self.state["square_avg"] + (1 - self.alpha) * grad * grad
        return params - lr * grad / (np.sqrt(sq) + self.eps)


class LBFGS(Optimizer):
    """``torch.optim.LBFGS(lr, history_size=40, max_iter=20)`` without line search."""

    uses_closure = True
    tolerance_grad = 1e-7
    tolerance_change = 1e-9

    def __init__(self, size: int, lr: float, weight_decay: float = 0.0, history_size: int = 40, max_iter: int = 20) -> None:
        super().__init__(size, lr, weight_decay)
        if weight_decay:
            raise ValueError("lbfgs takes no weight_decay (as torch.optim.LBFGS); set weight_decay to 0.")
        self.history_size, self.max_iter = history_size, max_iter
        self.max_eval = max_iter * 5 // 4
        self.state.update(
            # "step_length" is torch's t; the base class's "t" counts optimiser steps
            n_iter=np.zeros(1), d=np.zeros(size), step_length=np.zeros(1), h_diag=np.ones(1),
            prev_grad=np.zeros(size), prev_loss=np.zeros(1),
            old_dirs=np.zeros((0, size)), old_steps=np.zeros((0, size)), ro=np.zeros(0),
        )

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self.state) - set(state))
        if missing:
            raise ValueError(f"Optimizer state lacks {missing}; it was saved by another optimizer.")
        self.state = {key: np.asarray(state[key], dtype=np.float64).copy() for key in self.state}

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:  # pragma: no cover - guard
        raise TypeError("lbfgs needs step_closure(params, closure).")

    def step_closure(self, params, closure):
        """Up to ``max_iter`` L-BFGS iterations from ``params``, each evaluating ``closure(params) ->
        (loss, grad)`` once; returns the new parameters and the loss at the start."""
        st = self.state
        lr = self.lr
        loss, grad = closure(params)
        orig_loss = loss
        if np.abs(grad).max() <= self.tolerance_grad:
            return params, orig_loss
        memory = _Memory(list(st["old_dirs"]), list(st["old_steps"]), list(st["ro"]), float(st["h_diag"][0]))
        d, t = st["d"], float(st["step_length"][0])
        prev_grad, prev_loss = st["prev_grad"], float(st["prev_loss"][0])
        evals, iteration = 1, 0
        params = params.copy()
        while iteration < self.max_iter:
            iteration += 1
            st["n_iter"] += 1
            first = st["n_iter"][0] == 1
            d = self._direction(memory, grad, prev_grad, d, t, first)
            prev_grad, prev_loss = grad.copy(), loss
            t = min(1.0, 1.0 / np.abs(grad).sum()) * lr if first else lr
            if float(grad @ d) > -self.tolerance_change:
                break
            params = params + t * d
            if iteration != self.max_iter:
                loss, grad = closure(params)
                evals += 1
            if self._converged(iteration, evals, grad, d * t, loss, prev_loss):
                break
        size = self.size
        st.update(
            d=np.asarray(d, dtype=np.float64), step_length=np.array([t]), h_diag=np.array([memory.h_diag]),
            prev_grad=prev_grad, prev_loss=np.array([prev_loss]),
            old_dirs=np.array(memory.dirs).reshape(-1, size), old_steps=np.array(memory.steps).reshape(-1, size),
            ro=np.array(memory.ro, dtype=np.float64),
        )
        st["t"] += 1
        return params, orig_loss

    def _direction(self, memory: _Memory, grad, prev_grad, d, t: float, first: bool) -> np.ndarray:
        """The search direction: ``-grad`` at the first iteration, else the two-loop recursion over
        the curvature pairs (the newest pair added first when its curvature is positive)."""
        if first:
            memory.dirs, memory.steps, memory.ro, memory.h_diag = [], [], [], 1.0
            return -grad
        y = grad - prev_grad
        s_vec = d * t
        ys = float(y @ s_vec)
        if ys > 1e-10:
            if len(memory.dirs) == self.history_size:
                memory.dirs.pop(0), memory.steps.pop(0), memory.ro.pop(0)
            memory.dirs.append(y)
            memory.steps.append(s_vec)
            memory.ro.append(1.0 / ys)
            memory.h_diag = ys / float(y @ y)
        q = -grad
        alphas = [0.0] * len(memory.dirs)
        for i in reversed(range(len(memory.dirs))):
            alphas[i] = float(memory.steps[i] @ q) * memory.ro[i]
            q = q - alphas[i] * memory.dirs[i]
        d = q * memory.h_diag
        for i in range(len(memory.dirs)):
            beta = float(memory.dirs[i] @ d) * memory.ro[i]
            d = d + memory.steps[i] * (alphas[i] - beta)
        return d

    def _converged(self, iteration: int, evals: int, grad, step, loss: float, prev_loss: float) -> bool:
        """torch's stopping tests after an iteration."""
        if iteration == self.max_iter or evals >= self.max_eval:
            return True
        if np.abs(grad).max() <= self.tolerance_grad:
            return True
        return bool(np.abs(step).max() <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change)


class _Memory:
    """L-BFGS's curvature pairs (``dirs`` y, ``steps`` s, ``ro`` 1/y.s) and its diagonal scale."""

    def __init__(self, dirs: list, steps: list, ro: list, h_diag: float) -> None:
        self.dirs, self.steps, self.ro, self.h_diag = dirs, steps, ro, h_diag


def make_optimizer(name: str, size: int, lr, weight_decay: float = 0.0) -> Optimizer:
    """``adam`` (AdamW), ``sgd``, ``rmsprop`` or ``lbfgs``, with learning rate ``lr`` (a number or a
    schedule: a function of the steps taken).

    Raises:
        ValueError: for another name or bad hyperparameters.
    """
    classes = {"adam": AdamW, "sgd": SGD, "rmsprop": RMSprop, "lbfgs": LBFGS}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}.")
    return classes[name](size, lr, weight_decay)
