"""First-order optimisers with PyTorch's update rules, on flat numpy vectors.

``adam`` is the reference's ``AdamW(lr, weight_decay=0)`` by default; ``sgd`` and ``rmsprop`` use
torch's defaults (RMSprop: ``alpha=0.99``, ``eps=1e-8``). State is a dict of arrays so it can be
stored in a checkpoint and resumed exactly.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "make_optimizer", "clip_grad_norm", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``grad`` to norm ``max_norm`` if larger (``torch.nn.utils.clip_grad_norm_``)."""
    norm = float(np.linalg.norm(grad))
    if max_norm > 0 and norm > max_norm:
        return grad * (max_norm / (norm + 1e-6)), norm
    return grad, norm


class Optimizer:
    """Base class: ``step(params, grad) -> new params``; ``state`` holds arrays and a counter."""

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


def make_optimizer(name: str, size: int, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """``adam`` (AdamW), ``sgd`` or ``rmsprop``.

    Raises:
        ValueError: for another name (``lbfgs`` is not implemented yet) or bad hyperparameters.
    """
    classes = {"adam": AdamW, "sgd": SGD, "rmsprop": RMSprop}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}.")
    return classes[name](size, lr, weight_decay)
