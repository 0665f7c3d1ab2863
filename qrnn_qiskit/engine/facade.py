"""The exact engine's one public class: :class:`ExactEngine`, a thin facade over its backends.

The engine computes the meaning of the gate-level circuits of :mod:`qrnn_qiskit.circuits` with
every ancilla measurement postselected on 0 (or amplified, ``amplify:L``) and every io measurement
either postselected on a target (teacher forcing) or sampled, the whole state renormalised after
each projection. The facade validates the inputs, turns tokens into io patterns and back, draws the
random numbers of sampled steps (one stream for every backend, so the same seed samples the same
outcomes everywhere) and hands the work to the backend its :class:`~qrnn_qiskit.engine.spec.EngineSpec`
resolves to: compiled CPU kernels (:mod:`~qrnn_qiskit.engine.backends.cpu`), the numpy reference
(:mod:`~qrnn_qiskit.engine.backends.numpy`) or CUDA kernels (:mod:`~qrnn_qiskit.engine.backends.cuda`).
Every backend returns per-sequence loss and gradient rows, which the facade adds in sequence order,
so a batch gives the same bits whole or in shards.
"""

from __future__ import annotations

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.engine.backends.cpu import CpuBackend
from qrnn_qiskit.engine.backends.cuda import cuda_backend
from qrnn_qiskit.engine.backends.density import DRAW, MEASURE, TARGET, DensityBackend
from qrnn_qiskit.engine.backends.numpy import NumpyBackend
from qrnn_qiskit.engine.plan import StepPlan, bit_reverse
from qrnn_qiskit.engine.results import (
    SequenceResult,
    combine_rows,
    reference_loss,
    scored_mask,
    step_mask,
    sum_rows,
    validate_batch,
)
from qrnn_qiskit.engine.spec import EngineSpec

__all__ = ["ExactEngine"]


def make_backend(plan: StepPlan, spec: EngineSpec):
    """The backend that computes ``spec`` for ``plan`` (:attr:`EngineSpec.backend`)."""
    if spec.backend == "density":
        return DensityBackend(plan, spec.neuron_mode, spec.noise, spec.precision, compiled=spec.path != "numpy")
    if spec.backend == "numpy":
        return NumpyBackend(plan, spec.neuron_mode)
    if spec.backend == "gpu":
        return cuda_backend(plan, spec.precision)
    return CpuBackend(plan, spec.precision)


class ExactEngine:
    """Exact simulator of a QRNN configuration, with reverse-mode gradients.

    Args:
        config: the model.
        engine: the path (``cpu``, ``numpy``, ``gpu``), or an :class:`EngineSpec` (then
            ``precision`` and ``neuron_mode`` are the spec's).
        precision: ``float64`` or ``float32`` (compiled paths).
        neuron_mode: ``postselect`` or ``amplify:L``.

    Example:
        >>> cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
        >>> engine = ExactEngine(cfg)
        >>> params = cfg.initial_parameters(seed=1)
        >>> result = engine.simulate(params, [[0, 1, 1]], [[1, 1, 0]])
        >>> result.probabilities.shape
        (1, 3, 2)
    """

    def __init__(self, config: QRNNConfig, engine: str | EngineSpec = "cpu", precision: str = "float64",
                 neuron_mode: str | NeuronMode = "postselect") -> None:
        if not isinstance(config, QRNNConfig):
            raise TypeError(f"config must be a QRNNConfig, got {type(config).__name__}.")
        self.config = config
        self.spec = EngineSpec.parse(engine, precision, neuron_mode)
        self.plan = StepPlan(config)
        self.backend = make_backend(self.plan, self.spec)

    @property
    def engine(self) -> str:
        """The backend that computes (``numpy`` for amplified neurons asked on ``cpu``)."""
        return self.spec.backend

    @property
    def precision(self) -> str:
        return self.spec.precision

    @property
    def neuron_mode(self) -> NeuronMode:
        return self.spec.neuron_mode

    def _io(self, tokens: np.ndarray | None) -> np.ndarray | None:
        return None if tokens is None else bit_reverse(tokens, self.config.input_width)

    def _result(self, probs_io, outcomes_io, taken, acceptance) -> SequenceResult:
        return SequenceResult(probabilities=probs_io[:, :, self.plan.token_order],
                              outcomes=bit_reverse(outcomes_io, self.config.input_width),
                              outcome_probability=taken, neuron_acceptance=acceptance)

    def simulate(self, parameters: object, inputs: object, targets: object | None = None, *,
                 sample: object | None = None, measure: object | None = None,
                 seed: int | np.random.Generator | None = None) -> SequenceResult:
        """Run ``B`` sequences of ``T`` steps.

        Args:
            parameters: flat parameter vector (:mod:`qrnn_qiskit.core.config` layout).
            inputs: ``(B, T)`` tokens fed at each step.
            targets: ``(B, T)`` tokens the io measurement of each step is postselected on; if
                omitted every step's outcome is sampled.
            sample: boolean mask of steps whose outcome is sampled instead of postselected, shape
                ``(T,)`` or per sequence ``(B, T)``.
            measure: boolean mask of steps measured with the outcome discarded (the exact mixture
                over every outcome; a mixed-state meaning, :attr:`EngineSpec.mixed`); their
                ``outcome_probability`` is 1.
            seed: randomness for sampled steps.

        Returns:
            The per-step distributions, outcomes and postselection probabilities.

        Raises:
            ValueError: for malformed parameters, tokens or masks.
            QRNNError: if a postselection has probability 0.
        """
        params, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        batch, steps = inputs.shape
        mask = step_mask(sample, steps, "sample", batch=batch)
        draw = np.ones((batch, steps), bool) if targets is None else np.broadcast_to(mask, (batch, steps))
        measured = np.broadcast_to(step_mask(measure, steps, "measure", batch=batch), (batch, steps))
        rng = np.random.default_rng(seed)
        uniforms = np.zeros((batch, steps))
        for t in np.flatnonzero(draw.any(axis=0)):  # one draw per sampled step, whatever the backend
            uniforms[:, t] = rng.random(batch)
        io_targets = self._io(targets) if targets is not None else np.zeros_like(inputs)
        if isinstance(self.backend, DensityBackend):
            actions = np.where(measured, MEASURE, np.where(draw, DRAW, TARGET)).astype(np.int8)
            out = self.backend.forward(params, self._io(inputs), io_targets, actions, uniforms)
        elif measured.any():
            raise ValueError(f"measure marks steps measured with their outcome discarded, a mixed-state meaning; "
                             f"this engine computes {self.spec}. Use EngineSpec(..., unscored='measure') or the "
                             "density path.")
        else:
            out = self.backend.forward(params, self._io(inputs), self._io(targets), np.ascontiguousarray(draw), uniforms)
        return self._result(*out)

    def distributions(self, parameters: object, inputs: object, targets: object) -> SequenceResult:
        """The step distributions that :meth:`loss_and_gradient` and :meth:`vjp` differentiate:
        every step postselected on its target, or measured with ``unscored="measure"``."""
        inputs = np.asarray(inputs)
        return self.simulate(parameters, inputs, targets,
                             measure=np.full(inputs.shape[-1], self.spec.unscored == "measure"))

    def loss(self, parameters: object, inputs: object, targets: object, scored: object) -> float:
        """The reference loss (see :meth:`loss_and_gradient`) without its gradient."""
        params, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        scored = scored_mask(scored, inputs.shape[1])
        result = self.distributions(params, inputs, targets)
        return reference_loss(result.probabilities, targets, scored, self.config.input_width)[0]

    def loss_and_gradient(self, parameters: object, inputs: object, targets: object,
                          scored: object) -> tuple[float, np.ndarray, SequenceResult]:
        """Reference loss under teacher forcing and its exact gradient.

        The loss is the mean over sequences and scored steps of
        ``logsumexp(p) - p[target] - (-1 + ln(2**I - 1 + e))``, with ``p`` the step's outcome
        distribution used as logits (the reference's ``CrossEntropyLoss`` on probabilities). With
        ``unscored="postselect"`` every step, scored or not, is postselected on its target
        (teacher forcing); with ``unscored="measure"`` every step is measured and its outcome
        discarded, as a device runs the circuit, and ``p`` is the step's distribution over every
        earlier outcome (no projection).

        Args:
            parameters: flat parameter vector.
            inputs: ``(B, T)`` tokens fed at each step.
            targets: ``(B, T)`` target token of each step's prediction.
            scored: ``(T,)`` boolean mask of the steps that enter the loss.

        Returns:
            ``(loss, gradient, result)`` with the gradient in the flat parameter layout.
        """
        loss_rows, grad_rows, result = self.loss_and_gradient_rows(parameters, inputs, targets, scored)
        num_scored = int(scored_mask(scored, result.probabilities.shape[1]).sum())
        loss, grad = combine_rows(loss_rows, grad_rows, num_scored, self.config.input_width)
        return loss, grad, result

    def loss_and_gradient_rows(self, parameters: object, inputs: object, targets: object,
                               scored: object) -> tuple[np.ndarray, np.ndarray, SequenceResult]:
        """Per-sequence terms of :meth:`loss_and_gradient`, before they are summed.

        Returns ``(loss_rows, grad_rows, result)``: ``loss_rows[b]`` is the sum over the scored
        steps of sequence ``b`` of ``logsumexp(p) - p[target]``, ``grad_rows[b]`` its gradient.
        ``loss_and_gradient`` is :func:`~qrnn_qiskit.engine.results.combine_rows` of them, and rows
        of shards concatenated in order give the same bits as the whole batch.
        """
        params, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        scored = scored_mask(scored, inputs.shape[1])
        extra = {"actions": self._actions(inputs.shape)} if isinstance(self.backend, DensityBackend) else {}
        loss_rows, grad_rows, probs, acceptance = self.backend.loss_and_gradient_rows(
            params, self._io(inputs), self._io(targets), scored, **extra)
        return loss_rows, grad_rows, self._forced_result(probs, targets, acceptance)

    def _actions(self, shape: tuple) -> np.ndarray:
        """The density path's action at every step of a gradient pass: a device measures every step;
        teacher forcing projects each on its target."""
        return np.full(shape, MEASURE if self.spec.unscored == "measure" else TARGET, np.int8)

    def _forced_result(self, probs_io: np.ndarray, targets: np.ndarray, acceptance) -> SequenceResult:
        """A gradient pass's distributions (io order) as a result in token order, taken at ``targets``."""
        probs = probs_io[:, :, self.plan.token_order]
        taken = np.take_along_axis(probs, targets[..., None], axis=2)[..., 0]
        return SequenceResult(probs, targets.copy(), taken, acceptance)

    def vjp(self, parameters: object, inputs: object, targets: object,
            grad_probabilities: object) -> tuple[np.ndarray, SequenceResult]:
        """The gradient of ``sum(grad_probabilities * probabilities)`` in the parameters (see
        :meth:`vjp_rows`, whose rows it adds in sequence order)."""
        rows, result = self.vjp_rows(parameters, inputs, targets, grad_probabilities)
        return self.sum_rows(rows), result

    def vjp_rows(self, parameters: object, inputs: object, targets: object,
                 grad_probabilities: object) -> tuple[np.ndarray, SequenceResult]:
        """The gradient of ``sum(grad_probabilities * probabilities)`` in the parameters: the
        vector-Jacobian product of the step distributions, for any loss on them (a torch loss, a
        classical head). Teacher forced, or every step measured with ``unscored="measure"``, as
        :meth:`loss_and_gradient` computes them.

        Args:
            parameters, inputs, targets: as in :meth:`simulate`.
            grad_probabilities: ``(B, T, 2**I)`` upstream gradient of :attr:`SequenceResult.probabilities`.

        Returns:
            ``(rows, result)``: one gradient row ``(B, P)`` per sequence and the distributions they
            are the gradient of. The compiled paths fuse the reference loss into
            their kernels, so the product runs on the numpy path for them (the same maths).
        """
        params, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        grad = np.asarray(grad_probabilities, dtype=np.float64)
        if grad.shape != inputs.shape + (self.config.num_outcomes,):
            raise ValueError(f"grad_probabilities must have shape {inputs.shape + (self.config.num_outcomes,)} "
                             f"(sequences, steps, outcomes), got {grad.shape}.")
        grad_io = np.empty_like(grad)
        grad_io[:, :, self.plan.token_order] = grad  # back to io order
        if isinstance(self.backend, DensityBackend):
            rows, probs, acceptance = self.backend.vjp_rows(params, self._io(inputs), self._io(targets), grad_io,
                                                            self._actions(inputs.shape))
        else:
            backend = self.backend if isinstance(self.backend, NumpyBackend) else NumpyBackend(self.plan, self.neuron_mode)
            rows, probs, acceptance = backend.vjp_rows(params, self._io(inputs), self._io(targets), grad_io)
        return rows, self._forced_result(probs, targets, acceptance)

    @staticmethod
    def sum_rows(rows: np.ndarray) -> np.ndarray:
        """Rows of :meth:`loss_and_gradient_rows` added strictly in order."""
        return sum_rows(rows)
