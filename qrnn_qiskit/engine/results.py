"""What the exact engine returns, the reference loss, and the checks of its inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.engine.backends.cpu import sum_rows

__all__ = ["SequenceResult", "combine_rows", "draw_outcomes", "reference_loss", "reference_loss_offset",
           "scored_mask", "step_mask", "sum_rows", "validate_batch"]


def reference_loss_offset(input_width: int) -> float:
    """The constant the reference subtracts from its loss: ``-1 + ln(2**I - 1 + e)``.

    With it, a step's loss ``logsumexp(p) - p_y - offset`` lies in ``[0, 1]`` and is 0 exactly when
    the target has probability 1.
    """
    return -1.0 + math.log(2**input_width - 1 + math.e)


@dataclass(frozen=True)
class SequenceResult:
    """What one pass of the exact engine gives, for ``B`` sequences of ``T`` steps.

    Attributes:
        probabilities: ``(B, T, 2**I)``, the io outcome distribution before the measurement of
            each step, indexed by token value (io lane 0 = most significant bit).
        outcomes: ``(B, T)`` tokens taken at each step (the target, or the sampled value).
        outcome_probability: ``(B, T)``, ``probabilities`` at the outcome taken: the postselection
            probability of the target under teacher forcing.
        neuron_acceptance: ``(B, T)``, the probability that every neuron of the step succeeds
            (all ancillas read 0), given the state at the start of the step.
    """

    probabilities: np.ndarray
    outcomes: np.ndarray
    outcome_probability: np.ndarray
    neuron_acceptance: np.ndarray

    @property
    def min_postselection_probability(self) -> float:
        """Smallest probability of an outcome taken (the reference's ``min_postsel_prob``)."""
        return float(self.outcome_probability.min()) if self.outcome_probability.size else 1.0


def validate_batch(config, params: object, inputs: object, targets: object | None):
    """``(params, inputs, targets)`` checked against ``config`` (a QRNN's or a baseline's):
    a flat parameter vector, ``(batch, steps)`` tokens, targets of the same shape or ``None``.

    Raises:
        ValueError: naming what is wrong.
    """
    params = config.validate_parameters(params)
    inputs = config.validate_tokens(inputs, "inputs")
    if inputs.ndim != 2 or inputs.shape[1] < 1:
        raise ValueError(f"inputs must have shape (batch, steps) with at least one step, got {inputs.shape}.")
    if targets is not None:
        targets = config.validate_tokens(targets, "targets")
        if targets.shape != inputs.shape:
            raise ValueError(f"targets must have the same shape as inputs {inputs.shape}, got {targets.shape}.")
    return params, inputs, targets


def step_mask(mask: object, steps: int, name: str, batch: int | None = None) -> np.ndarray:
    """A boolean mask of shape ``(steps,)``, or ``(batch, steps)`` where ``batch`` is given; ``None``
    is all False.

    Raises:
        ValueError: for another dtype or shape.
    """
    if mask is None:
        return np.zeros(steps, dtype=bool)
    array = np.asarray(mask)
    if array.dtype != bool:
        raise ValueError(f"{name} must be a boolean mask over the {steps} steps, got dtype {array.dtype}.")
    shapes = [(steps,)] + ([(batch, steps)] if batch is not None else [])
    if array.shape not in shapes:
        allowed = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} must have shape {allowed}, one flag per step, got {array.shape}.")
    return array


def scored_mask(scored: object, steps: int) -> np.ndarray:
    """The scored-step mask of shape ``(steps,)``, with at least one step set."""
    mask = step_mask(scored, steps, "scored")
    if not mask.any():
        raise ValueError("scored must mark at least one step whose prediction enters the loss.")
    return mask


def draw_outcomes(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Outcomes drawn from the rows of ``p`` ``(B, K)`` by inverse CDF at uniforms ``u`` ``(B,)``,
    never one of probability 0 through rounding (the compiled kernels' ``draw`` does the same)."""
    drawn = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)
    zero = p[np.arange(p.shape[0]), drawn] <= 0.0
    if np.any(zero):
        drawn[zero] = np.argmax(p[zero], axis=1)
    return drawn


def reference_loss(probs: np.ndarray, targets: np.ndarray, scored: np.ndarray,
                   input_width: int) -> tuple[float, np.ndarray]:
    """The reference loss of distributions ``probs`` ``(B, T, K)`` (token order) and its gradient
    in ``probs``: the mean over sequences and scored steps of ``logsumexp(p) - p[target]``, minus
    :func:`reference_loss_offset`."""
    sel = probs[:, scored]  # (B, K, 2**I)
    tgt = targets[:, scored]
    count = sel.shape[0] * sel.shape[1]
    shift = sel.max(axis=2, keepdims=True)
    exp = np.exp(sel - shift)
    lse = np.log(exp.sum(axis=2)) + shift[..., 0]
    picked = np.take_along_axis(sel, tgt[..., None], axis=2)[..., 0]
    loss = float((lse - picked).sum() / count - reference_loss_offset(input_width))
    softmax = exp / exp.sum(axis=2, keepdims=True)
    grad_sel = softmax
    np.put_along_axis(grad_sel, tgt[..., None], np.take_along_axis(grad_sel, tgt[..., None], 2) - 1.0, 2)
    grad = np.zeros_like(probs)
    grad[:, scored] = grad_sel / count
    return loss, grad


def combine_rows(loss_rows: np.ndarray, grad_rows: np.ndarray, num_scored: int, input_width: int) -> tuple[float, np.ndarray]:
    """The mean loss and gradient of per-sequence rows (:meth:`ExactEngine.loss_and_gradient_rows`),
    added strictly in row order, so rows of shards concatenated in order give the whole batch's bits."""
    count = loss_rows.shape[0] * num_scored
    loss = float(sum_rows(loss_rows[:, None])[0]) / count - reference_loss_offset(input_width)
    return loss, sum_rows(grad_rows) / count
