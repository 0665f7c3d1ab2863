"""Parameter-shift gradients of the reference loss, as a device would compute them.

A device does not see normalised distributions: it sees the fraction of shots in which every
ancilla read 0, the io outputs of earlier steps matched their targets, and step ``t`` read ``y``.
That *joint* probability ``Q[b, t, y]`` is a trigonometric polynomial in every parameter: each
occurrence of a weight is a (controlled) ``RY``, whose generator has eigenvalues in ``{0, +-1/2}``,
so with ``m`` occurrences up to step ``t``, ``Q`` has frequencies ``{0, 1/2, 1, ..., m}``. The
equidistant shift rule of Wierichs et al. (Quantum 6, 677 (2022)) with ``R = 2m`` frequencies in
``phi/2`` is then exact, and the loss gradient follows from the chain rule through
``p = Q / sum_y Q``.

:func:`joint_probabilities` and :func:`loss_gradient_from_joint` are shared with the Aer runner,
where ``Q`` is estimated from shots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from qrnn_qiskit.engine.facade import ExactEngine
from qrnn_qiskit.engine.results import SequenceResult, reference_loss

__all__ = [
    "joint_probabilities",
    "loss_from_joint",
    "loss_gradient_from_joint",
    "shift_rule",
    "occurrences_per_step",
    "parameter_shift_gradient",
    "parameter_shift_loss_and_gradient",
    "shift_plan",
]


def joint_probabilities(result: SequenceResult) -> np.ndarray:
    """``Q[b, t, y]``: probability that all postselections up to step ``t`` succeed, earlier io
    outcomes equal the ones taken, and step ``t`` reads token ``y``."""
    accepted = result.neuron_acceptance * result.outcome_probability
    prefix = np.cumprod(np.concatenate([np.ones_like(accepted[:, :1]), accepted[:, :-1]], axis=1), axis=1)
    return (prefix * result.neuron_acceptance)[:, :, None] * result.probabilities


def loss_from_joint(joint: np.ndarray, targets: np.ndarray, scored: np.ndarray, input_width: int) -> float:
    """The reference loss from joint probabilities (normalised per step)."""
    probs = joint / joint.sum(axis=2, keepdims=True)
    return reference_loss(probs, np.asarray(targets), np.asarray(scored), input_width)[0]


def loss_gradient_from_joint(
    joint: np.ndarray, targets: np.ndarray, scored: np.ndarray, input_width: int
) -> tuple[float, np.ndarray]:
    """Loss and ``dL/dQ`` for joint probabilities ``Q`` of shape ``(B, T, 2**I)``."""
    total = joint.sum(axis=2, keepdims=True)
    probs = joint / total
    loss, grad_p = reference_loss(probs, np.asarray(targets), np.asarray(scored), input_width)
    grad_q = (grad_p - np.sum(grad_p * probs, axis=2, keepdims=True)) / total
    return loss, grad_q


def shift_rule(frequencies: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifts and coefficients of the exact rule for integer frequencies ``1..R`` (``R >= 1``).

    ``f'(0) = sum_mu coeff[mu] * f(shift[mu])`` for every ``f(x) = a_0 + sum_{r<=R} a_r cos(r x) +
    b_r sin(r x)``. For ``R = 1`` this is ``(f(pi/2) - f(-pi/2)) / 2``.
    """
    if frequencies < 1:
        raise ValueError(f"frequencies must be >= 1, got {frequencies}.")
    r = frequencies
    mu = np.arange(1, 2 * r + 1)
    x = (2 * mu - 1) * np.pi / (2 * r)
    coeff = (-1.0) ** (mu - 1) / (4 * r * np.sin(x / 2) ** 2)
    return x, coeff


def occurrences_per_step(engine: ExactEngine) -> np.ndarray:
    """How often each parameter appears as a rotation angle in one cell step of the circuit."""
    cfg = engine.config
    counts = np.full(cfg.num_parameters, 2**cfg.order, dtype=np.int64)
    counts[cfg.unitary_offset :] = 1
    return counts


def shift_plan(
    engine: ExactEngine, params: np.ndarray, steps: int, indices: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shifted parameter vector of the exact rule, for evaluation in one batch.

    Returns ``(vectors (N, P), coefficients (N,), parameter index (N,))``; the derivative of a
    joint probability by parameter ``i`` is ``sum over rows of i: coefficient * Q(vector)``.
    """
    occurrences = occurrences_per_step(engine)
    vectors, coeffs, owners = [], [], []
    for i in range(engine.config.num_parameters) if indices is None else indices:
        # frequencies of Q in phi/2: up to 2 * (occurrences up to the last step)
        shifts, weights = shift_rule(int(2 * occurrences[i] * steps))
        for shift, weight in zip(shifts, weights):
            values = params.copy()
            values[i] += 2.0 * shift
            vectors.append(values)
            coeffs.append(0.5 * weight)  # d/dphi = (1/2) d/d(phi/2)
            owners.append(i)
    return np.array(vectors), np.array(coeffs), np.array(owners, dtype=np.int64)


def parameter_shift_gradient(engine: ExactEngine, parameters, inputs, targets, scored, **options) -> np.ndarray:
    """Gradient of the reference loss by the exact shift rule on joint probabilities: the gradient
    half of :func:`parameter_shift_loss_and_gradient` (same arguments)."""
    return parameter_shift_loss_and_gradient(engine, parameters, inputs, targets, scored, **options)[1]


def parameter_shift_loss_and_gradient(
    engine: ExactEngine,
    parameters: object,
    inputs: object,
    targets: object,
    scored: object,
    *,
    indices: Sequence[int] | None = None,
    joint_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    floor: float = 0.0,
) -> tuple[float, np.ndarray]:
    """Loss and gradient of the reference loss by the exact shift rule on joint probabilities.

    Args:
        engine: supplies the configuration and, unless ``joint_fn`` is given, the evaluations.
        parameters, inputs, targets, scored: as for :meth:`ExactEngine.loss_and_gradient`.
        indices: parameters to differentiate (all by default); the others get 0.
        joint_fn: maps parameter vectors ``(N, P)`` to ``Q`` of shape ``(N, B, T, 2**I)`` (for
            example estimates from shots, all rows in one run); by default the exact engine's.
        floor: added to the unshifted joint probabilities (estimates from shots can be 0 where the
            loss divides).

    Returns:
        The loss at ``parameters`` and the gradient vector in the flat layout.
    """
    cfg = engine.config
    params = cfg.validate_parameters(parameters)
    inputs = cfg.validate_tokens(inputs, "inputs")
    targets = cfg.validate_tokens(targets, "targets")
    scored = np.asarray(scored, dtype=bool)

    if joint_fn is None:

        def joint_fn(vectors: np.ndarray) -> np.ndarray:
            return np.stack([joint_probabilities(engine.simulate(v, inputs, targets)) for v in vectors])

    vectors, coeffs, owners = shift_plan(engine, params, inputs.shape[1], indices)
    joints = joint_fn(np.vstack([params[None, :], vectors]))
    loss, grad_q = loss_gradient_from_joint(joints[0] + floor, targets, scored, cfg.input_width)
    contributions = coeffs * np.einsum("nbty,bty->n", joints[1:], grad_q)
    grad = np.zeros_like(params)
    np.add.at(grad, owners, contributions)
    return loss, grad
