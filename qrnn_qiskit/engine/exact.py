"""Exact postselected simulation of the QRNN with reverse-mode gradients.

This is the meaning of the gate-level circuits of :mod:`qrnn_qiskit.circuits` with every ancilla
measurement postselected on 0 and every io measurement either postselected on a target (teacher
forcing) or sampled, the whole state renormalised after each projection.

How it is computed
------------------
All gates are real, so amplitudes are real. Conditioned on its ancillas reading 0, a neuron on
target lane ``t`` maps the two amplitudes ``(a, b)`` of every source pattern ``x`` (target 0 / 1) to
``(C a - S b, S a + C b)`` with ``C = cos(Theta(x)/2)**N``, ``S = sin(Theta(x)/2)**N``, ``N = 2**order``:
one pass over the state per neuron. These maps are linear, so the state is renormalised once per
step instead of once per neuron: the norm lost in a step is the probability that all of its
neurons succeed (``neuron_acceptance``).

During the input and work stages the io lanes hold the basis state of the input token, so only the
``2**W`` workspace amplitudes are simulated and the io bits select the neuron's angle table; the full
``2**(I+W)`` state exists only for the output stage. ``Theta(x) = bias + theta + sum_S phi_S x_S``
over all patterns is a subset-sum (zeta) transform of the weights, and its adjoint (a superset sum)
turns angle gradients back into weight gradients.

The reverse pass keeps the normalised workspace state at the start of each step (``B * 2**W``
floats per step) and recomputes a step's intermediate states when it is differentiated.

Paths
-----
This module's numpy code is the reference (``engine="numpy"``): batch-vectorised, float64, and
checked against the gate-level circuit. ``engine="cpu"`` (the default) runs the same computation
in compiled kernels, one sequence at a time, threaded over the batch
(:mod:`qrnn_qiskit.engine.compiled`); ``engine="gpu"`` runs it in CUDA kernels, one thread block a
sequence (:mod:`qrnn_qiskit.engine.gpu`). Both compiled paths also offer ``precision="float32"``
and return per-sequence loss and gradient rows (:meth:`ExactEngine.loss_and_gradient_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError

__all__ = ["ENGINES", "PRECISIONS", "ExactEngine", "SequenceResult", "activation", "combine_rows", "draw_outcomes",
           "neuron_angles", "reference_loss_offset"]

_TINY = 1e-300
#: the engine's paths: compiled CPU kernels (default), the numpy reference, CUDA kernels on a GPU
ENGINES = ("cpu", "numpy", "gpu")
PRECISIONS = ("float64", "float32")


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


def _bit_reverse(values: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros_like(values)
    for i in range(width):
        out |= ((values >> i) & 1) << (width - 1 - i)
    return out


def neuron_angles(engine: ExactEngine, params: np.ndarray) -> np.ndarray:
    """``Theta[k, x] = bias + theta_k + sum_{S subset of x} phi_S``: neuron ``k``'s angle for every
    full pattern ``x``, shape ``(N, 2**n)`` (every path's tables start here)."""
    cfg = engine.config
    thetas = np.empty((cfg.num_neurons, 1 << engine.num_lanes))
    for spec, masks, row in zip(cfg.neurons, engine.subset_masks, thetas):
        row[:] = _zeta(engine.num_lanes, masks, params[spec.weight_slice])
        row += cfg.bias + params[spec.bias_index]
    return thetas


def activation(theta: np.ndarray, power: int, derivative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S) = (cos(Theta/2)**power, sin(Theta/2)**power)``, or with ``derivative`` their
    derivatives in ``Theta``."""
    cos, sin = np.cos(0.5 * theta), np.sin(0.5 * theta)
    if derivative:
        return -0.5 * power * cos ** (power - 1) * sin, 0.5 * power * sin ** (power - 1) * cos
    return cos**power, sin**power


class _Tables:
    """Per-neuron activation tables for one parameter vector.

    ``cs[k]`` is neuron ``k``'s ``(C, S)`` in the layout its pass uses; amplified neurons also keep
    their derivatives in the same layout (``dcs``) when ``derivative`` is asked for, computed in the
    same batched simulation, and only at the angles a layout holds (half of all patterns)."""

    def __init__(self, engine: ExactEngine, params: np.ndarray, derivative: bool = False) -> None:
        cfg = engine.config
        self.theta_full = neuron_angles(engine, params)  # full-pattern angle per neuron, (N, 2**n)
        self.dcs = None
        if engine.neuron_mode.is_amplify:
            self._amplified(engine, derivative)
        else:
            c_all, s_all = activation(self.theta_full, engine.power)
            # per neuron: (C, S) tables in the layout the neuron's pass uses
            self.cs = [engine._layout_tables(spec.target, c, s) for spec, c, s in zip(cfg.neurons, c_all, s_all)]
        self.unitary = [
            (math.cos(0.5 * params[i]), math.sin(0.5 * params[i])) for i in engine.unitary_indices
        ]

    def _amplified(self, engine: ExactEngine, derivative: bool) -> None:
        from qrnn_qiskit.engine.amplified import amplified_activation

        angles = [engine._layout_tables(spec.target, row, row)[0] for spec, row in zip(engine.config.neurons, self.theta_full)]
        flat = np.concatenate([a.reshape(-1) for a in angles])
        values = amplified_activation(flat, engine.config.order, engine.neuron_mode.uses, derivative)
        bounds = np.cumsum([0] + [a.size for a in angles])
        split = [[v[lo:hi].reshape(a.shape) for v in values] for lo, hi, a in zip(bounds[:-1], bounds[1:], angles)]
        self.cs = [(parts[0], parts[1]) for parts in split]
        if derivative:
            self.dcs = [(parts[2], parts[3]) for parts in split]


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


def draw_outcomes(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Outcomes drawn from the rows of ``p`` ``(B, K)`` by inverse CDF at uniforms ``u`` ``(B,)``,
    never one of probability 0 through rounding (the compiled kernels' ``draw`` does the same)."""
    drawn = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)
    zero = p[np.arange(p.shape[0]), drawn] <= 0.0
    if np.any(zero):
        drawn[zero] = np.argmax(p[zero], axis=1)
    return drawn


def combine_rows(loss_rows: np.ndarray, grad_rows: np.ndarray, num_scored: int, input_width: int) -> tuple[float, np.ndarray]:
    """The mean loss and gradient of per-sequence rows (:meth:`ExactEngine.loss_and_gradient_rows`),
    added strictly in row order, so rows of shards concatenated in order give the whole batch's bits."""
    from qrnn_qiskit.engine.compiled import CompiledPath

    count = loss_rows.shape[0] * num_scored
    loss = float(CompiledPath.sum_rows(loss_rows[:, None])[0]) / count - reference_loss_offset(input_width)
    return loss, CompiledPath.sum_rows(grad_rows) / count


def _zeta(num_lanes: int, masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Theta[x] = sum_{S subset of x} w_S`` over all ``2**num_lanes`` patterns."""
    f = np.zeros(1 << num_lanes)
    np.add.at(f, masks, weights)
    g = f.reshape((2,) * num_lanes)
    for axis in range(num_lanes):
        lo = [slice(None)] * num_lanes
        hi = [slice(None)] * num_lanes
        lo[axis], hi[axis] = 0, 1
        g[tuple(hi)] += g[tuple(lo)]
    return f


def _zeta_adjoint(num_lanes: int, grad_theta: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`_zeta`: ``dW_S = sum_{x superset of S} dTheta[x]``."""
    g = grad_theta.copy().reshape((2,) * num_lanes)
    for axis in range(num_lanes):
        lo = [slice(None)] * num_lanes
        hi = [slice(None)] * num_lanes
        lo[axis], hi[axis] = 0, 1
        g[tuple(lo)] += g[tuple(hi)]
    return g.reshape(-1)[masks]


class ExactEngine:
    """Exact postselected simulator of a QRNN configuration.

    Args:
        config: the model.

    Example:
        >>> cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
        >>> engine = ExactEngine(cfg)
        >>> params = cfg.initial_parameters(seed=1)
        >>> result = engine.simulate(params, [[0, 1, 1]], [[1, 1, 0]])
        >>> result.probabilities.shape
        (1, 3, 2)
    """

    def __init__(
        self, config: QRNNConfig, engine: str = "cpu", precision: str = "float64", neuron_mode: object = "postselect"
    ) -> None:
        if not isinstance(config, QRNNConfig):
            raise TypeError(f"config must be a QRNNConfig, got {type(config).__name__}.")
        from qrnn_qiskit.core.modes import NeuronMode

        self.neuron_mode = NeuronMode.parse(neuron_mode)
        if self.neuron_mode.is_rus:
            raise ValueError(
                f"The exact engine computes neuron modes 'postselect' and 'amplify:L', not {self.neuron_mode} "
                "(repeat-until-success is exact only for basis-state sources); sample rus circuits with "
                "backend 'aer'."
            )
        if self.neuron_mode.is_amplify:
            # Amplified neurons have complex amplitudes; the compiled kernels are real-valued, so the
            # numpy path computes them (documented in the README's engine section).
            if engine == "gpu" or precision != "float64":
                raise ValueError(
                    f"neuron mode {self.neuron_mode} runs on the numpy path in float64 (complex amplitudes); "
                    f"got engine {engine!r}, precision {precision!r}. Use engine 'cpu' or 'numpy' and float64."
                )
            if engine == "cpu":
                engine = "numpy"
        if engine not in ENGINES:
            raise ValueError(
                f"engine must be one of {', '.join(ENGINES)}, got {engine!r}: 'cpu' is the compiled "
                "kernel, 'numpy' the reference path, 'gpu' CUDA kernels on an NVIDIA GPU (gpu extra)."
            )
        if engine == "numpy" and precision != "float64":
            raise ValueError(
                f"precision {precision!r} needs engine 'cpu' or 'gpu'; the numpy path is float64 only."
            )
        self.config = config
        self.engine = engine
        self._dtype = complex if self.neuron_mode.is_amplify else float
        self.precision = precision
        self.num_lanes = config.num_lanes
        self.power = 2**config.order
        self.subset_masks = [
            np.array([sum(1 << lane for lane in subset) for subset in spec.subsets], dtype=np.int64)
            for spec in config.neurons
        ]
        self.unitary_indices = [
            config.unitary_index(s, lane)
            for s in range(config.stages)
            for lane in config.workspace_lanes
        ]
        # The op list of one step, in order: ("n", neuron index) or ("u", unitary position).
        ops: list[tuple[str, int]] = []
        stage = None
        for spec in config.neurons:
            if spec.stage != stage:
                stage = spec.stage
                if stage.is_work:
                    ops += [("u", stage.index * config.workspace + j) for j in range(config.workspace)]
            ops.append(("n", spec.index))
        num_ws_ops = len(ops) - config.input_width
        self._ws_ops = ops[:num_ws_ops]
        self._out_ops = ops[num_ws_ops:]
        # bit reversal of the outcomes: probs_io[..., order] is in token order (and back, it is its own inverse)
        self._token_order = _bit_reverse(np.arange(config.num_outcomes), config.input_width)
        self._compiled = None
        if engine == "cpu":
            from qrnn_qiskit.engine.compiled import CompiledPath

            self._compiled = CompiledPath(self, precision)
        elif engine == "gpu":
            from qrnn_qiskit.engine.gpu import GPUPath

            self._compiled = GPUPath(self, precision)

    # ------------------------------------------------------------------ layout helpers
    # States keep the batch innermost: the workspace state is (2**W, B) and the full state
    # (2**n, B) with pattern index ``ws << I | io``. A lane's amplitude pairs are then the views
    # ``psi.reshape(hi, 2, lo, B)[:, 0]`` and ``[:, 1]``, contiguous along the batch.
    def _layout_tables(self, target: int, c: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reshape full-pattern tables to the layout used by the neuron on ``target``.

        Workspace targets: ``(hi*lo, 2**I)``, rows over the workspace pattern without the target
        bit, columns over the io pattern (the input), so ``table @ onehot(inputs)`` selects each
        sequence's column. io targets: ``(hi, lo, 1)`` over the full pattern without the target.
        """
        cfg = self.config
        num_in, num_ws = cfg.input_width, cfg.workspace
        if target >= num_in:
            j = target - num_in
            shape = (1 << (num_ws - 1 - j), 2, 1 << j, 1 << num_in)
            rows = shape[0] * shape[2]
            return (
                np.ascontiguousarray(c.reshape(shape)[:, 0]).reshape(rows, -1),
                np.ascontiguousarray(s.reshape(shape)[:, 0]).reshape(rows, -1),
            )
        shape = (1 << (self.num_lanes - 1 - target), 2, 1 << target)
        return (
            np.ascontiguousarray(c.reshape(shape)[:, 0])[..., None],
            np.ascontiguousarray(s.reshape(shape)[:, 0])[..., None],
        )

    @staticmethod
    def _split(psi: np.ndarray, lane_bit: int, num_bits: int) -> tuple[np.ndarray, np.ndarray]:
        view = psi.reshape(1 << (num_bits - 1 - lane_bit), 2, 1 << lane_bit, psi.shape[-1])
        return view[:, 0], view[:, 1]

    # ------------------------------------------------------------------ validation
    def _validate(
        self, params: object, inputs: object, targets: object | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return validate_batch(self.config, params, inputs, targets)

    @staticmethod
    def _step_mask(mask: object, steps: int, name: str, batch: int | None = None) -> np.ndarray:
        """A boolean mask of shape ``(steps,)``, or ``(batch, steps)`` where ``batch`` is given."""
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

    # ------------------------------------------------------------------ one step
    @staticmethod
    def _rotate(a: np.ndarray, b: np.ndarray, c, s, buf: np.ndarray, buf2: np.ndarray) -> None:
        """In place: ``(a, b) <- (c a - s b, s a + c b)`` (``c``, ``s`` arrays or scalars)."""
        np.multiply(c, a, out=buf)
        np.multiply(s, b, out=buf2)
        buf -= buf2
        np.multiply(s, a, out=buf2)
        b *= c
        b += buf2
        a[...] = buf

    def _ws_pass(
        self, tables: _Tables, psi: np.ndarray, onehot: np.ndarray, saved: list | None
    ) -> np.ndarray:
        """Input and work stages on the workspace state ``psi`` (2**W, B), in place."""
        cfg = self.config
        num_in, num_ws = cfg.input_width, cfg.workspace
        half = (psi.shape[0] // 2,) + psi.shape[1:]
        buf, buf2 = np.empty(half, self._dtype), np.empty(half, self._dtype)
        for kind, idx in self._ws_ops:
            if saved is not None:
                saved.append(psi.copy())
            if kind == "u":
                j = idx % num_ws
                c, s = tables.unitary[idx]
            else:
                j = cfg.neurons[idx].target - num_in
                c_tab, s_tab = tables.cs[idx]
                c = (c_tab @ onehot).reshape(-1)
                s = (s_tab @ onehot).reshape(-1)
            a, b = self._split(psi, j, num_ws)
            shape = a.shape
            if kind != "u":
                c, s = c.reshape(shape), s.reshape(shape)
            self._rotate(a, b, c, s, buf.reshape(shape), buf2.reshape(shape))
        return psi

    def _out_pass(self, tables: _Tables, full: np.ndarray, saved: list | None) -> np.ndarray:
        """Output stage on the full state ``full`` (2**n, B), in place."""
        cfg = self.config
        half = (full.shape[0] // 2,) + full.shape[1:]
        buf, buf2 = np.empty(half, self._dtype), np.empty(half, self._dtype)
        for _, idx in self._out_ops:
            spec = cfg.neurons[idx]
            c_tab, s_tab = tables.cs[idx]
            if saved is not None:
                saved.append(full.copy())
            a, b = self._split(full, spec.target, self.num_lanes)
            self._rotate(a, b, c_tab, s_tab, buf.reshape(a.shape), buf2.reshape(a.shape))
        return full

    def _onehot(self, io_in: np.ndarray) -> np.ndarray:
        onehot = np.zeros((self.config.num_outcomes, io_in.shape[0]))
        onehot[io_in, np.arange(io_in.shape[0])] = 1.0
        return onehot

    def _step_forward(
        self, tables: _Tables, psi_ws: np.ndarray, io_in: np.ndarray, saved: list | None = None
    ) -> np.ndarray:
        """Unnormalised full state after one step's neurons, shape (2**W, 2**I, B)."""
        cfg = self.config
        batch = psi_ws.shape[1]
        psi = self._ws_pass(tables, psi_ws.copy(), self._onehot(io_in), saved)
        full = np.zeros((1 << cfg.workspace, cfg.num_outcomes, batch), self._dtype)
        full[:, 0, :] = psi
        self._out_pass(tables, full.reshape(-1, batch), saved)
        return full

    # ------------------------------------------------------------------ forward
    def _forward(
        self,
        params: np.ndarray,
        inputs: np.ndarray,
        targets: np.ndarray | None,
        sample: np.ndarray,
        rng: np.random.Generator | None,
        keep_states: bool,
    ) -> tuple[SequenceResult, _Tables, list[np.ndarray], np.ndarray]:
        cfg = self.config
        batch, steps = inputs.shape
        num_in = cfg.input_width
        io_inputs = _bit_reverse(inputs, num_in)
        io_targets = _bit_reverse(targets, num_in) if targets is not None else None
        if self._compiled is not None and not keep_states:
            return self._compiled_forward(params, io_inputs, io_targets, sample, rng), None, [], None
        tables = _Tables(self, params, derivative=keep_states)
        psi = np.zeros((1 << cfg.workspace, batch), self._dtype)
        psi[0, :] = 1.0
        probs = np.empty((batch, steps, cfg.num_outcomes))
        outcomes_io = np.empty((batch, steps), dtype=np.int64)
        taken = np.empty((batch, steps))
        acceptance = np.empty((batch, steps))
        starts = []
        rows = np.arange(batch)
        for t in range(steps):
            if keep_states:
                starts.append(psi)
            full = self._step_forward(tables, psi, io_inputs[:, t])
            q = _outcome_weights(full)
            z = q.sum(axis=1)
            if np.any(z <= _TINY):
                raise QRNNError(
                    f"At step {t} the neurons' postselection has probability 0 for some sequence; "
                    "the parameters make the circuit's acceptance vanish."
                )
            p = q / z[:, None]
            draw = np.ones(batch, bool) if io_targets is None else np.broadcast_to(sample[..., t], (batch,))
            if draw.any():
                drawn = draw_outcomes(p, rng.random(batch))
                y = drawn if io_targets is None else np.where(draw, drawn, io_targets[:, t])
            else:
                y = io_targets[:, t]
            qy = q[rows, y]
            if np.any(qy <= _TINY):
                bad = int(np.argmax(qy <= _TINY))
                raise QRNNError(
                    f"Postselecting step {t} of sequence {bad} on outcome "
                    f"{int(_bit_reverse(np.array([y[bad]]), num_in)[0])} is impossible: it has "
                    "probability 0 under these parameters."
                )
            psi = full[:, y, rows] / np.sqrt(qy)
            probs[:, t] = p
            outcomes_io[:, t] = y
            taken[:, t] = p[rows, y]
            acceptance[:, t] = z
        result = SequenceResult(
            probabilities=probs[:, :, self._token_order],
            outcomes=_bit_reverse(outcomes_io, num_in),
            outcome_probability=taken,
            neuron_acceptance=acceptance,
        )
        return result, tables, starts, outcomes_io

    def _compiled_forward(self, params, io_inputs, io_targets, sample, rng) -> SequenceResult:
        """The forward pass on the compiled path, with the numpy path's random draws."""
        batch, steps = io_inputs.shape
        if io_targets is None:
            draw = np.ones((batch, steps), bool)
        else:
            draw = np.broadcast_to(sample, (batch, steps))
        uniforms = np.zeros((batch, steps))
        for t in np.flatnonzero(draw.any(axis=0)):  # the numpy path draws once per such step
            uniforms[:, t] = rng.random(batch)
        probs, outcomes_io, taken, acceptance = self._compiled.forward(
            params, io_inputs, io_targets, draw, uniforms
        )
        num_in = self.config.input_width
        return SequenceResult(
            probabilities=probs[:, :, self._token_order],
            outcomes=_bit_reverse(outcomes_io, num_in),
            outcome_probability=taken,
            neuron_acceptance=acceptance,
        )

    def simulate(
        self,
        parameters: object,
        inputs: object,
        targets: object | None = None,
        *,
        sample: object | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> SequenceResult:
        """Run ``B`` sequences of ``T`` steps.

        Args:
            parameters: flat parameter vector (:mod:`qrnn_qiskit.core.config` layout).
            inputs: ``(B, T)`` tokens fed at each step.
            targets: ``(B, T)`` tokens the io measurement of each step is postselected on; if
                omitted every step's outcome is sampled.
            sample: boolean mask of steps whose outcome is sampled instead of postselected, shape
                ``(T,)`` or per sequence ``(B, T)``.
            seed: randomness for sampled steps.

        Returns:
            The per-step distributions, outcomes and postselection probabilities.

        Raises:
            ValueError: for malformed parameters, tokens or masks.
            QRNNError: if a postselection has probability 0.
        """
        params, inputs, targets = self._validate(parameters, inputs, targets)
        mask = self._step_mask(sample, inputs.shape[1], "sample", batch=inputs.shape[0])
        rng = np.random.default_rng(seed)
        result, *_ = self._forward(params, inputs, targets, mask, rng, keep_states=False)
        return result

    # ------------------------------------------------------------------ loss
    def loss(self, parameters: object, inputs: object, targets: object, scored: object) -> float:
        """The reference loss (see :meth:`loss_and_gradient`) without its gradient."""
        params, inputs, targets = self._validate(parameters, inputs, targets)
        scored = self._scored(scored, inputs.shape[1])
        result, *_ = self._forward(params, inputs, targets, np.zeros(inputs.shape[1], bool), None, False)
        return _reference_loss(result.probabilities, targets, scored, self.config.input_width)[0]

    @staticmethod
    def _scored(scored: object, steps: int) -> np.ndarray:
        """The scored-step mask of shape ``(steps,)``, with at least one step set."""
        mask = ExactEngine._step_mask(scored, steps, "scored")
        if not mask.any():
            raise ValueError("scored must mark at least one step whose prediction enters the loss.")
        return mask

    def loss_and_gradient(
        self, parameters: object, inputs: object, targets: object, scored: object
    ) -> tuple[float, np.ndarray, SequenceResult]:
        """Reference loss under teacher forcing and its exact gradient.

        The loss is the mean over sequences and scored steps of
        ``logsumexp(p) - p[target] - (-1 + ln(2**I - 1 + e))``, with ``p`` the step's outcome
        distribution used as logits (the reference's ``CrossEntropyLoss`` on probabilities). Every
        step, scored or not, is postselected on its target.

        Args:
            parameters: flat parameter vector.
            inputs: ``(B, T)`` tokens fed at each step.
            targets: ``(B, T)`` target token of each step's prediction.
            scored: ``(T,)`` boolean mask of the steps that enter the loss.

        Returns:
            ``(loss, gradient, result)`` with the gradient in the flat parameter layout.
        """
        params, inputs, targets = self._validate(parameters, inputs, targets)
        scored = self._scored(scored, inputs.shape[1])
        if self._compiled is not None:
            loss_rows, grad_rows, result = self._loss_and_gradient_rows(params, inputs, targets, scored)
            loss, grad = combine_rows(loss_rows, grad_rows, int(scored.sum()), self.config.input_width)
            return loss, grad, result
        cfg = self.config
        result, tables, starts, y_io = self._forward(
            params, inputs, targets, np.zeros(inputs.shape[1], bool), None, keep_states=True
        )
        loss, grad_p = _reference_loss(result.probabilities, targets, scored, cfg.input_width)
        grad_p_io = np.empty_like(grad_p)
        grad_p_io[:, :, self._token_order] = grad_p
        grad = self._backward(params, tables, inputs, starts, y_io, grad_p_io)
        return loss, grad, result

    def loss_and_gradient_rows(
        self, parameters: object, inputs: object, targets: object, scored: object
    ) -> tuple[np.ndarray, np.ndarray, SequenceResult]:
        """Per-sequence terms of :meth:`loss_and_gradient`, before they are summed.

        Returns ``(loss_rows, grad_rows, result)``: ``loss_rows[b]`` is the sum over the scored
        steps of sequence ``b`` of ``logsumexp(p) - p[target]``, ``grad_rows[b]`` its gradient.
        ``loss_and_gradient`` is :func:`combine_rows` of them, and rows of shards concatenated
        in order give the same bits as the whole batch (compiled paths only).
        """
        if self._compiled is None:
            raise ValueError("loss_and_gradient_rows needs engine 'cpu' or 'gpu', not 'numpy'.")
        params, inputs, targets = self._validate(parameters, inputs, targets)
        scored = self._scored(scored, inputs.shape[1])
        return self._loss_and_gradient_rows(params, inputs, targets, scored)

    def _loss_and_gradient_rows(self, params, inputs, targets, scored):
        num_in = self.config.input_width
        io_targets = _bit_reverse(targets, num_in)
        loss_rows, grad_rows, probs, acceptance = self._compiled.loss_and_gradient_rows(
            params, _bit_reverse(inputs, num_in), io_targets, scored
        )
        probs = probs[:, :, self._token_order]
        taken = np.take_along_axis(probs, targets[..., None], axis=2)[..., 0]
        result = SequenceResult(probs, targets.copy(), taken, acceptance)
        return loss_rows, grad_rows, result

    @staticmethod
    def sum_rows(rows: np.ndarray) -> np.ndarray:
        """Rows of :meth:`loss_and_gradient_rows` added strictly in order."""
        from qrnn_qiskit.engine.compiled import CompiledPath

        return CompiledPath.sum_rows(rows)

    # ------------------------------------------------------------------ backward
    def _backward(
        self,
        params: np.ndarray,
        tables: _Tables,
        inputs: np.ndarray,
        starts: list[np.ndarray],
        y_io: np.ndarray,
        grad_p: np.ndarray,
    ) -> np.ndarray:
        cfg = self.config
        batch, steps = inputs.shape
        num_in, num_ws, n = cfg.input_width, cfg.workspace, self.num_lanes
        io_inputs = _bit_reverse(inputs, num_in)
        rows = np.arange(batch)
        # dL/dC and dL/dS per neuron, summed over steps and batch, in the neuron's table layout.
        grad_c = [np.zeros_like(cs[0]) for cs in tables.cs]
        grad_s = [np.zeros_like(cs[1]) for cs in tables.cs]
        grad_unitary = np.zeros(len(self.unitary_indices))
        grad_next = np.zeros((1 << num_ws, batch))
        num_ws_ops = len(self._ws_ops)
        for t in reversed(range(steps)):
            saved: list = []
            full = self._step_forward(tables, starts[t], io_inputs[:, t], saved)
            q = _outcome_weights(full)
            z = q.sum(axis=1)
            p = q / z[:, None]
            y = y_io[:, t]
            root = np.sqrt(q[rows, y])
            # through p = q / z with q = sum_w full**2
            gp = grad_p[:, t]
            gq = (gp - np.einsum("by,by->b", gp, p)[:, None]) / z[:, None]
            g_full = 2.0 * full * gq.T[None, :, :]
            # through psi_next = full[:, y, b] / sqrt(q_y)
            psi_next = full[:, y, rows] / root
            proj = np.einsum("wb,wb->b", psi_next.conj(), grad_next).real
            g_full[:, y, rows] += (grad_next - psi_next * proj) / root
            g_flat = g_full.reshape(-1, batch)
            self._out_backward(tables, saved[num_ws_ops:], g_flat, grad_c, grad_s)
            g_ws = np.ascontiguousarray(g_flat.reshape(1 << num_ws, cfg.num_outcomes, batch)[:, 0, :])
            # input and work stages, reversed
            onehot = self._onehot(io_inputs[:, t])
            half = (g_ws.shape[0] // 2, batch)
            buf, buf2 = np.empty(half, self._dtype), np.empty(half, self._dtype)
            for (kind, idx), state in zip(reversed(self._ws_ops), reversed(saved[:num_ws_ops])):
                if kind == "u":
                    j = idx % num_ws
                    c, s = tables.unitary[idx]
                    a, b = self._split(state, j, num_ws)
                    ga, gb = self._split(g_ws, j, num_ws)
                    # d(a', b')/d(angle) = (-(s a + c b), c a - s b) / 2
                    grad_unitary[idx] += 0.5 * (
                        np.vdot(gb, c * a - s * b) - np.vdot(ga, s * a + c * b)
                    ).real
                    self._rotate(ga, gb, c, -s, buf.reshape(ga.shape), buf2.reshape(ga.shape))
                    continue
                j = cfg.neurons[idx].target - num_in
                c_tab, s_tab = tables.cs[idx]
                a, b = self._split(state, j, num_ws)
                ga, gb = self._split(g_ws, j, num_ws)
                a, b = a.conj(), b.conj()
                shape = a.shape
                d_c = ga * a
                d_c += gb * b
                d_s = gb * a
                d_s -= ga * b
                grad_c[idx] += d_c.reshape(-1, batch) @ onehot.T
                grad_s[idx] += d_s.reshape(-1, batch) @ onehot.T
                cg = (c_tab @ onehot).reshape(shape).conj()
                sg = (s_tab @ onehot).reshape(shape).conj()
                self._rotate(ga, gb, cg, -sg, buf.reshape(shape), buf2.reshape(shape))
            grad_next = g_ws
        return self._parameter_gradient(params, tables, grad_c, grad_s, grad_unitary)

    def _out_backward(self, tables: _Tables, saved: list, g_flat: np.ndarray, grad_c: list, grad_s: list) -> None:
        """The output stage reversed, in place on ``g_flat``: ``(a', b') = (C a - S b, S a + C b)``,
        so ``dL/dC += ga' a* + gb' b*``, ``dL/dS += gb' a* - ga' b*`` and ``g <- M^dagger g``."""
        n = self.num_lanes
        for (_, idx), state in zip(reversed(self._out_ops), reversed(saved)):
            target = self.config.neurons[idx].target
            c_tab, s_tab = tables.cs[idx]
            a, b = self._split(state, target, n)
            ga, gb = self._split(g_flat, target, n)
            a, b = a.conj(), b.conj()  # no-op copies of real states
            grad_c[idx] += (np.einsum("hlb,hlb->hl", ga, a) + np.einsum("hlb,hlb->hl", gb, b))[..., None]
            grad_s[idx] += (np.einsum("hlb,hlb->hl", gb, a) - np.einsum("hlb,hlb->hl", ga, b))[..., None]
            self._rotate(ga, gb, c_tab.conj(), -s_tab.conj(), np.empty(ga.shape, self._dtype),
                         np.empty(ga.shape, self._dtype))

    def _parameter_gradient(self, params, tables: _Tables, grad_c, grad_s, grad_unitary) -> np.ndarray:
        """The flat parameter gradient from dL/dC and dL/dS per neuron and the unitaries' gradient."""
        cfg, n = self.config, self.num_lanes
        grad = np.zeros_like(params)
        if tables.dcs is None:
            dc_all, ds_all = activation(tables.theta_full, self.power, derivative=True)
            derivs = [self._layout_tables(spec.target, dc, ds) for spec, dc, ds in zip(cfg.neurons, dc_all, ds_all)]
        else:
            derivs = tables.dcs
        for spec, masks, (dc_dth, ds_dth), d_c, d_s in zip(cfg.neurons, self.subset_masks, derivs, grad_c, grad_s):
            # complex C, S: dL/dTheta = Re(conj(dL/dC) dC/dTheta + conj(dL/dS) dS/dTheta)
            g = self._scatter_theta(spec.target, (d_c.conj() * dc_dth + d_s.conj() * ds_dth).real)
            grad[spec.bias_index] = g.sum()
            grad[spec.weight_slice] = _zeta_adjoint(n, g, masks)
        grad[self.unitary_indices] = grad_unitary
        return grad

    def _scatter_theta(self, target: int, contrib: np.ndarray) -> np.ndarray:
        """Place a gradient given in a neuron's table layout onto the full pattern space."""
        cfg = self.config
        num_in, num_ws = cfg.input_width, cfg.workspace
        grad_theta = np.zeros(1 << self.num_lanes)
        if target >= num_in:
            j = target - num_in
            shape = (1 << (num_ws - 1 - j), 2, 1 << j, 1 << num_in)
            grad_theta.reshape(shape)[:, 0] = contrib.reshape(shape[0], shape[2], shape[3])
        else:
            shape = (1 << (self.num_lanes - 1 - target), 2, 1 << target)
            grad_theta.reshape(shape)[:, 0] = contrib[..., 0]
        return grad_theta


def _outcome_weights(full: np.ndarray) -> np.ndarray:
    """``q[b, y] = sum_w |full[w, y, b]|**2``, real or complex states."""
    if np.iscomplexobj(full):
        return np.einsum("wyb,wyb->by", full.real, full.real) + np.einsum("wyb,wyb->by", full.imag, full.imag)
    return np.einsum("wyb,wyb->by", full, full)


def _reference_loss(
    probs: np.ndarray, targets: np.ndarray, scored: np.ndarray, input_width: int
) -> tuple[float, np.ndarray]:
    """Loss and its gradient with respect to ``probs`` (token order)."""
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
