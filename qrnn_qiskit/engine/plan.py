"""The step plan: what one cell step does, in the form every backend of the exact engine reads.

A :class:`StepPlan` is built once per model. It lists the step's operations in order (the input
and work stages on the workspace, then the output stage on the full state), the subset masks that
turn weights into neuron angles, where the work-stage rotation angles sit in the parameter vector,
and how a neuron's full-pattern tables are laid out for its pass. The functions below it are the
maths that every backend shares: the angle of every pattern (a subset-sum transform of the
weights) and its adjoint, the neuron's activation, and the bit reversal between tokens (io lane 0
is the most significant bit) and io patterns (lane ``q`` at bit ``q``).

States keep the batch innermost: the workspace state is ``(2**W, B)`` and the full state
``(2**n, B)`` with pattern index ``ws << I | io``. A lane's amplitude pairs are the views
``psi.reshape(hi, 2, lo, B)[:, 0]`` and ``[:, 1]`` (:func:`lane_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig

__all__ = ["StepPlan", "Op", "activation", "bit_reverse", "lane_pairs", "zeta", "zeta_adjoint"]


@dataclass(frozen=True)
class Op:
    """One operation of a step: ``kind`` ``"u"`` (a work-stage RY; ``index`` its position among the
    rotations) or ``"n"`` (neuron ``index``), acting on ``lane`` (a workspace lane counted from 0 for
    input and work stages, an io lane for the output stage)."""

    kind: str
    index: int
    lane: int


def bit_reverse(values: np.ndarray, width: int) -> np.ndarray:
    """Reverse the lowest ``width`` bits of every value (tokens <-> io patterns; an involution)."""
    values = np.asarray(values)
    out = np.zeros_like(values)
    for i in range(width):
        out |= ((values >> i) & 1) << (width - 1 - i)
    return out


def lane_pairs(psi: np.ndarray, lane_bit: int, num_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The views of the amplitudes with bit ``lane_bit`` 0 and 1 of ``psi`` ``(2**num_bits, B)``."""
    view = psi.reshape(1 << (num_bits - 1 - lane_bit), 2, 1 << lane_bit, psi.shape[-1])
    return view[:, 0], view[:, 1]


def zeta(num_lanes: int, masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
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


def zeta_adjoint(num_lanes: int, grad_theta: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`zeta`: ``dW_S = sum_{x superset of S} dTheta[x]``; ``grad_theta`` is
    ``(2**num_lanes,)`` or ``(2**num_lanes, B)`` (one column per sequence)."""
    extra = grad_theta.shape[1:]
    g = grad_theta.copy().reshape((2,) * num_lanes + extra)
    for axis in range(num_lanes):
        lo = [slice(None)] * num_lanes
        hi = [slice(None)] * num_lanes
        lo[axis], hi[axis] = 0, 1
        g[tuple(lo)] += g[tuple(hi)]
    return g.reshape((1 << num_lanes,) + extra)[masks]


def activation(theta: np.ndarray, power: int, derivative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S) = (cos(Theta/2)**power, sin(Theta/2)**power)``, or with ``derivative`` their
    derivatives in ``Theta``."""
    cos, sin = np.cos(0.5 * theta), np.sin(0.5 * theta)
    if derivative:
        return -0.5 * power * cos ** (power - 1) * sin, 0.5 * power * sin ** (power - 1) * cos
    return cos**power, sin**power


@dataclass(frozen=True)
class StepPlan:
    """The operations of one cell step of ``config`` and the layouts the backends share.

    Attributes:
        config: the model.
        num_lanes: ``I + W``.
        power: ``2**order``, the exponent of a postselected neuron's activation.
        subset_masks: per neuron, the bit mask of every weighted subset of its sources.
        unitary_indices: the parameter index of each work-stage rotation, in op order.
        ws_ops: the input and work stages' operations, in order (on the workspace state).
        out_ops: the output stage's neurons, in order (on the full state).
        token_order: ``probs_io[..., token_order]`` is in token order.
    """

    config: QRNNConfig
    num_lanes: int = field(init=False)
    power: int = field(init=False)
    subset_masks: tuple[np.ndarray, ...] = field(init=False)
    unitary_indices: tuple[int, ...] = field(init=False)
    ws_ops: tuple[Op, ...] = field(init=False)
    out_ops: tuple[Op, ...] = field(init=False)
    token_order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        if not isinstance(cfg, QRNNConfig):
            raise TypeError(f"config must be a QRNNConfig, got {type(cfg).__name__}.")
        masks = tuple(np.array([sum(1 << lane for lane in subset) for subset in spec.subsets], dtype=np.int64)
                      for spec in cfg.neurons)
        unitaries = tuple(cfg.unitary_index(s, lane) for s in range(cfg.stages) for lane in cfg.workspace_lanes)
        ops: list[Op] = []
        stage = None
        for spec in cfg.neurons:
            if spec.stage != stage:
                stage = spec.stage
                if stage.is_work:
                    first = stage.index * cfg.workspace
                    ops += [Op("u", first + j, j) for j in range(cfg.workspace)]
            lane = spec.target - cfg.input_width if spec.target >= cfg.input_width else spec.target
            ops.append(Op("n", spec.index, lane))
        cut = len(ops) - cfg.input_width
        for name, value in (("num_lanes", cfg.num_lanes), ("power", 2**cfg.order), ("subset_masks", masks),
                            ("unitary_indices", unitaries), ("ws_ops", tuple(ops[:cut])), ("out_ops", tuple(ops[cut:])),
                            ("token_order", bit_reverse(np.arange(cfg.num_outcomes), cfg.input_width))):
            object.__setattr__(self, name, value)

    def neuron_angles(self, params: np.ndarray) -> np.ndarray:
        """``Theta[k, x] = bias + theta_k + sum_{S subset of x} phi_S``: neuron ``k``'s angle for
        every full pattern ``x``, shape ``(N, 2**n)`` (every backend's tables start here)."""
        cfg = self.config
        thetas = np.empty((cfg.num_neurons, 1 << self.num_lanes))
        for spec, masks, row in zip(cfg.neurons, self.subset_masks, thetas):
            row[:] = zeta(self.num_lanes, masks, params[spec.weight_slice])
            row += cfg.bias + params[spec.bias_index]
        return thetas

    def layout_tables(self, target: int, c: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-pattern tables reshaped to the layout of the neuron on ``target``.

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
            return (np.ascontiguousarray(c.reshape(shape)[:, 0]).reshape(rows, -1),
                    np.ascontiguousarray(s.reshape(shape)[:, 0]).reshape(rows, -1))
        shape = (1 << (self.num_lanes - 1 - target), 2, 1 << target)
        return (np.ascontiguousarray(c.reshape(shape)[:, 0])[..., None],
                np.ascontiguousarray(s.reshape(shape)[:, 0])[..., None])

    def scatter_theta(self, target: int, contrib: np.ndarray) -> np.ndarray:
        """A gradient in the layout of the neuron on ``target`` (:meth:`layout_tables`), with any
        trailing axes (one per sequence), placed onto the full pattern space ``(2**n, ...)``."""
        cfg = self.config
        num_in, num_ws = cfg.input_width, cfg.workspace
        extra = contrib.shape[2:] if target >= num_in else contrib.shape[3:]
        grad_theta = np.zeros((1 << self.num_lanes,) + extra)
        if target >= num_in:
            j = target - num_in
            shape = (1 << (num_ws - 1 - j), 2, 1 << j, 1 << num_in)
            grad_theta.reshape(shape + extra)[:, 0] = contrib.reshape((shape[0], shape[2], shape[3]) + extra)
        else:
            shape = (1 << (self.num_lanes - 1 - target), 2, 1 << target)
            grad_theta.reshape(shape + extra)[:, 0] = contrib[:, :, 0]
        return grad_theta
