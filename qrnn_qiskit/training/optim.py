"""First-order optimisers with PyTorch's update rules, on flat numpy vectors.

``adam`` is the reference's ``AdamW(lr, weight_decay=0)`` by default; ``sgd`` and ``rmsprop`` use
torch's defaults (RMSprop: ``alpha=0.99``, ``eps=1e-8``); ``lbfgs`` is ``torch.optim.LBFGS`` with
``history_size=40``, ``max_iter=20`` and no line search, as the reference used it. State is a dict
of arrays so it can be stored in a checkpoint and resumed exactly.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "make_optimizer", "clip_grad_norm", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "sgd", "rmsprop", "lbfgs")


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

    def __init__(self, size: int, lr: float, weight_decay: float = 0.0) -> None:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate must be a positive number, got {lr!r}.")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}.")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, np.ndarray] = {"t": np.zeros(1)}
        self.size = size

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
        st["t"] += 1
        t = float(st["t"][0])
        params = params * (1 - self.lr * self.weight_decay)
        st["m"] = b1 * st["m"] + (1 - b1) * grad
        st["v"] = b2 * st["v"] + (1 - b2) * grad * grad
        # torch: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        denom = np.sqrt(st["v"]) / math.sqrt(1 - b2**t) + self.eps
        return params - (self.lr / (1 - b1**t)) * st["m"] / denom


class SGD(Optimizer):
    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.state["t"] += 1
        if self.weight_decay:
            grad = grad + self.weight_decay * params
        return params - self.lr * grad


class RMSprop(Optimizer):
    def __init__(self, size: int, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(size, lr, weight_decay)
        self.alpha, self.eps = alpha, eps
        self.state.update(square_avg=np.zeros(size))

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.state["t"] += 1
        if self.weight_decay:
            grad = grad + self.weight_decay * params
        sq = self.state["square_avg"] = self.alpha * self.state["square_avg"] + (1 - self.alpha) * grad * grad
        return params - self.lr * grad / (np.sqrt(sq) + self.eps)


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
        st = self.state
        lr = self.lr
        loss, grad = closure(params)
        orig_loss = loss
        if np.abs(grad).max() <= self.tolerance_grad:
            return params, orig_loss
        d, t = st["d"], float(st["step_length"][0])
        old_dirs, old_steps, ro = list(st["old_dirs"]), list(st["old_steps"]), list(st["ro"])
        h_diag = float(st["h_diag"][0])
        prev_grad, prev_loss = st["prev_grad"], float(st["prev_loss"][0])
        evals = 1
        iteration = 0
        params = params.copy()
        while iteration < self.max_iter:
            iteration += 1
            st["n_iter"] += 1
            if st["n_iter"][0] == 1:
                d = -grad
                old_dirs, old_steps, ro, h_diag = [], [], [], 1.0
            else:
                y = grad - prev_grad
                s_vec = d * t
                ys = float(y @ s_vec)
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0), old_steps.pop(0), ro.pop(0)
                    old_dirs.append(y)
                    old_steps.append(s_vec)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                q = -grad
                alphas = [0.0] * len(old_dirs)
                for i in reversed(range(len(old_dirs))):
                    alphas[i] = float(old_steps[i] @ q) * ro[i]
                    q = q - alphas[i] * old_dirs[i]
                d = q * h_diag
                for i in range(len(old_dirs)):
                    beta = float(old_dirs[i] @ d) * ro[i]
                    d = d + old_steps[i] * (alphas[i] - beta)
            prev_grad = grad.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / np.abs(grad).sum()) * lr if st["n_iter"][0] == 1 else lr
            if float(grad @ d) > -self.tolerance_change:
                break
            params = params + t * d
            if iteration != self.max_iter:
                loss, grad = closure(params)
                evals += 1
            if iteration == self.max_iter or evals >= self.max_eval:
                break
            if np.abs(grad).max() <= self.tolerance_grad:
                break
            if np.abs(d * t).max() <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break
        size = self.size
        st.update(
            d=np.asarray(d, dtype=np.float64), step_length=np.array([t]), h_diag=np.array([h_diag]),
            prev_grad=prev_grad, prev_loss=np.array([prev_loss]),
            old_dirs=np.array(old_dirs).reshape(-1, size), old_steps=np.array(old_steps).reshape(-1, size),
            ro=np.array(ro, dtype=np.float64),
        )
        st["t"] += 1
        return params, orig_loss


def make_optimizer(name: str, size: int, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """``adam`` (AdamW), ``sgd``, ``rmsprop`` or ``lbfgs``.

    Raises:
        ValueError: for another name or bad hyperparameters.
    """
    classes = {"adam": AdamW, "sgd": SGD, "rmsprop": RMSprop, "lbfgs": LBFGS}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}.")
    return classes[name](size, lr, weight_decay)
