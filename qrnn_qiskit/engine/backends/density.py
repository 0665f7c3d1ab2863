"""The density backend: the circuits' meaning on a device, as a mixed state over io and workspace.

Each cell step is the channel the circuit executes. The input is written into io lanes that were
reset to 0 (followed by the ``write`` noise); every neuron is its instrument
(:mod:`qrnn_qiskit.engine.instrument`: the Kraus maps of the branches its mode keeps, with the
ancilla readout errors), followed by the noise on every lane; the work stages' rotations are
unitary; the input is unwritten; and the io lanes are measured and reset. A step's measurement is
one of three actions, per sequence:

* ``TARGET``: postselected on the target (teacher forcing; a filter on the shots);
* ``DRAW``: postselected on an outcome drawn from the step's distribution (one sampled history);
* ``MEASURE``: measured and the outcome discarded, as a device reads a "don't care" step: the
  state continues as the mixture over every outcome, exactly, with no history sampled.

The state is ``rho`` of shape ``(B, N, N)``, ``N = 2**(I + W)``, with the pattern index
``ws << I | io`` of the pure backends. It is renormalised once per step; the trace lost in a step is
the probability that its kept neurons accept (``acceptance``). Memory grows as ``4**(I + W)`` per
sequence. Gradients are reverse mode: each step is recomputed from its normalised start, and
every channel is reversed by its adjoint, its parameters' derivatives taken through the Kraus maps.
Rows are kept per sequence, as on the pure backends.
"""

from __future__ import annotations

import math

import numpy as np

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.engine.backends.density_kernels import apply_channel
from qrnn_qiskit.engine.backends.numpy import loss_rows
from qrnn_qiskit.engine.backends.reductions import TINY
from qrnn_qiskit.engine.instrument import neuron_instrument
from qrnn_qiskit.engine.memory import check_memory, density_bytes
from qrnn_qiskit.engine.plan import StepPlan, zeta_adjoint

__all__ = ["DRAW", "MEASURE", "ROW_BLOCK", "TARGET", "DensityBackend", "density_bytes"]

TARGET, DRAW, MEASURE = 0, 1, 2

#: sequences a gradient pass takes at once (see :meth:`DensityBackend.loss_and_gradient_rows`)
ROW_BLOCK = 8


def _pauli_channel(lam: float) -> np.ndarray:
    """Qiskit's ``depolarizing_error(lam, 1)`` as real Kraus maps (``iY`` for ``Y``: same channel)."""
    eye, x = np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])
    iy, z = np.array([[0.0, -1.0], [1.0, 0.0]]), np.diag([1.0, -1.0])
    return np.stack([math.sqrt(1 - 3 * lam / 4) * eye, *(math.sqrt(lam / 4) * m for m in (x, iy, z))])


def _damping(gamma: float, phase: bool) -> np.ndarray:
    """Amplitude damping (``phase`` False) or phase damping as two real Kraus maps."""
    keep = np.diag([1.0, math.sqrt(1 - gamma)])
    lose = np.array([[0.0, 0.0], [0.0, math.sqrt(gamma)]]) if phase else np.array([[0.0, math.sqrt(gamma)], [0.0, 0.0]])
    return np.stack([keep, lose])


def lane_channels(noise: NoiseSpec) -> list[np.ndarray]:
    """The channels after every neuron on each lane, in order: depolarizing, damping, dephasing."""
    out = []
    if noise.neuron:
        out.append(_pauli_channel(noise.neuron))
    if noise.damping:
        out.append(_damping(noise.damping, False))
    if noise.dephasing:
        out.append(_damping(noise.dephasing, True))
    return out


def readout_matrix(noise: NoiseSpec, width: int) -> np.ndarray:
    """``C[read, true]`` over io patterns of ``width`` lanes, each lane misread independently."""
    e0, e1 = noise.readout
    one = np.array([[1 - e0, e1], [e0, 1 - e1]])
    mat = np.ones((1, 1))
    for _ in range(width):  # lane q is bit q: the lowest lane is the fastest index
        mat = np.kron(one, mat)
    return mat


class _Op:
    """One channel of a step on lane ``lane``: Kraus maps ``kraus`` ``(F, hi, lo, 2, 2)`` (or
    ``(F, 1, 1, 2, 2)`` for every pattern alike), their derivatives, and what they belong to."""

    __slots__ = ("lane", "kraus", "dkraus", "neuron", "unitary")

    def __init__(self, lane, kraus, dkraus=None, neuron=None, unitary=None) -> None:
        self.lane, self.kraus, self.dkraus, self.neuron, self.unitary = lane, kraus, dkraus, neuron, unitary


class DensityBackend:
    """The exact engine on mixed states (see the module).

    Args:
        plan: the model's step plan.
        mode: the neurons' mode (every mode: ``postselect``, ``rus:R``, ``amplify:L``, ``keep``).
        noise: the device's noise, or None.
        precision: ``float64`` or ``float32`` (states; gradients accumulate in double).
        compiled: apply the channels with the compiled kernel
            (:mod:`~qrnn_qiskit.engine.backends.density_kernels`), else with numpy broadcasting.
    """

    def __init__(self, plan: StepPlan, mode: NeuronMode, noise: NoiseSpec | None = None,
                 precision: str = "float64", compiled: bool = True) -> None:
        self.plan, self.mode = plan, mode
        self.apply = apply_channel if compiled else _apply
        self.noise = noise or NoiseSpec()
        self.complex = mode.is_amplify
        real = np.float32 if precision == "float32" else np.float64
        self.dtype = (np.complex64 if real is np.float32 else np.complex128) if self.complex else real
        self.lane_noise = [k.reshape(k.shape[0], 1, 1, 2, 2) for k in lane_channels(self.noise)]
        self.write_noise = (_pauli_channel(self.noise.write).reshape(4, 1, 1, 2, 2) if self.noise.write else None)
        self.readout = readout_matrix(self.noise, plan.config.input_width)

    # ------------------------------------------------------------------ tables
    def instruments(self, params: np.ndarray, derivative: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per neuron, its kept Kraus maps at every source pattern ``(F, hi, lo, 2, 2)`` (and their
        derivatives in the angle), compressed to as few maps as the patterns need."""
        plan = self.plan
        n = plan.num_lanes
        thetas = plan.neuron_angles(params)
        out = []
        for spec, row in zip(plan.config.neurons, thetas):
            hi, lo = 1 << (n - 1 - spec.target), 1 << spec.target
            angles = row.reshape(hi, 2, lo)[:, 0].reshape(-1)
            ins = neuron_instrument(angles, plan.config.order, self.mode, derivative=derivative,
                                    readout=self.noise.readout)
            kraus, dkraus = _compress(ins.kraus, ins.derivative)
            if not self.complex:
                kraus = kraus.real
                dkraus = None if dkraus is None else dkraus.real
            shape = (kraus.shape[0], hi, lo, 2, 2)
            out.append((kraus.reshape(shape), None if dkraus is None else dkraus.reshape(shape)))
        return out

    def _ops(self, params: np.ndarray, tables) -> tuple[list[_Op], list[_Op]]:
        """The channels of the input and work stages, and of the output stage, in order."""
        plan, cfg = self.plan, self.plan.config
        ws_ops, out_ops = [], []
        for target_list, ops in ((plan.ws_ops, ws_ops), (plan.out_ops, out_ops)):
            for op in target_list:
                if op.kind == "u":
                    angle = params[plan.unitary_indices[op.index]]
                    c, s = math.cos(0.5 * angle), math.sin(0.5 * angle)
                    k = np.array([[[[[c, -s], [s, c]]]]])
                    dk = 0.5 * np.array([[[[[-s, -c], [c, -s]]]]])
                    ops.append(_Op(cfg.input_width + op.lane, k, dk, unitary=op.index))
                    continue
                lane = op.lane + (cfg.input_width if ops is ws_ops else 0)
                kraus, dkraus = tables[op.index]
                ops.append(_Op(lane, kraus, dkraus, neuron=op.index))
                for channel in self.lane_noise:
                    ops += [_Op(q, channel) for q in range(plan.num_lanes)]
        return ws_ops, out_ops

    # ------------------------------------------------------------------ passes
    def forward(self, params, io_inputs, io_targets, actions, uniforms):
        """Probabilities (io order, with readout errors), outcomes, the probability of each step's
        kept outcome (1 where measured) and the acceptance of each step's neurons."""
        run = self._run(params, io_inputs, io_targets, actions, uniforms, derivative=False, keep=False)
        return run.probs, run.outcomes, run.taken, run.acceptance

    def loss_and_gradient_rows(self, params, io_inputs, io_targets, scored, actions=None):
        """Per-sequence loss sums and gradient rows; every step ``MEASURE``-d unless ``actions``
        says otherwise (``TARGET`` everywhere is teacher forcing, the pure backends' training).

        The sequences go through in blocks of :data:`ROW_BLOCK`, so a row's bits depend only on
        its block: shards that start at multiples of it (the Ray workers') give the whole batch's
        bits. (numpy's vectorised sums round by memory alignment, so the same sequence computed
        in a batch of another size can differ in the last bit.)"""
        if actions is None:
            actions = np.full(io_inputs.shape, MEASURE, np.int8)
        parts = self._gradient(params, io_inputs, io_targets, actions,
                               lambda probs, block: loss_rows(probs, io_targets[block], scored))
        return tuple(np.concatenate(items) for items in zip(*parts))

    def vjp_rows(self, params, io_inputs, io_targets, grad_probs, actions):
        """Per-sequence gradient rows of ``sum(grad_probs * probs)`` for any upstream gradient of the
        step distributions ``(B, T, K)`` (io order), with each step's ``actions``; also the
        distributions and acceptances."""
        parts = self._gradient(params, io_inputs, io_targets, actions, lambda probs, block: (None, grad_probs[block]))
        return tuple(np.concatenate(items) for items in list(zip(*parts))[1:])

    def _gradient(self, params, io_inputs, io_targets, actions, upstream) -> list[tuple]:
        """Per block of :data:`ROW_BLOCK` sequences, the run and its reverse from
        ``upstream(probs, block) -> (extra, grad_p)``: ``(extra, gradient rows, probs, acceptance)``."""
        tables = self.instruments(params, True)  # the neurons' maps depend on the parameters alone
        parts = []
        for start in range(0, io_inputs.shape[0], ROW_BLOCK):
            block = slice(start, start + ROW_BLOCK)
            run = self._run(params, io_inputs[block], io_targets[block], actions[block],
                            np.zeros(io_inputs[block].shape), derivative=True, keep=True, tables=tables)
            extra, grad_p = upstream(run.probs, block)
            parts.append((extra, self._backward(params, run, io_inputs[block], grad_p), run.probs, run.acceptance))
        return parts

    def _run(self, params, io_inputs, io_targets, actions, uniforms, *, derivative: bool, keep: bool,
             tables=None) -> _Run:
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        self._check_memory(batch, keep)
        tables = self.instruments(params, derivative) if tables is None else tables
        run = _Run(self._ops(params, tables), tables, batch, steps, cfg.num_outcomes)
        rho = np.zeros((batch, 1 << cfg.workspace, 1 << cfg.workspace), self.dtype)
        rho[:, 0, 0] = 1.0
        for t in range(steps):
            if keep:
                run.starts.append(rho)
            full = self._step(run, rho, io_inputs[:, t], None)
            rho = self._measure(run, full, t, io_targets[:, t], actions[:, t], uniforms[:, t])
        return run

    def _check_memory(self, batch: int, keep: bool) -> None:
        check_memory(self.plan.config, batch, 1, density=True, complex_amplitudes=self.complex, block=batch, gradient=keep,
                     options="the batch or the model (I+W), or use the pure-state engine (unscored postselect, no noise)")

    def _step(self, run: _Run, rho_ws: np.ndarray, io_in: np.ndarray, saved: list | None) -> np.ndarray:
        """The unnormalised full state after one step's channels, from the normalised ``rho_ws``."""
        cfg, n = self.plan.config, self.plan.num_lanes
        batch, k = rho_ws.shape[0], cfg.num_outcomes
        full = np.zeros((batch, rho_ws.shape[1], k, rho_ws.shape[1], k), self.dtype)
        full[np.arange(batch), :, io_in, :, io_in] = rho_ws
        full = full.reshape(batch, 1 << n, 1 << n)
        for q in range(cfg.input_width) if self.write_noise is not None else ():
            if saved is not None:
                saved.append(full)
            full = self.apply(full, self.write_noise, q, n)
        ws_ops, out_ops = run.ops
        for op in ws_ops:
            if saved is not None:
                saved.append(full)
            full = self.apply(full, op.kraus, op.lane, n)
        full = _xor_io(full, io_in, k)
        for op in out_ops:
            if saved is not None:
                saved.append(full)
            full = self.apply(full, op.kraus, op.lane, n)
        return full

    def _measure(self, run: _Run, full, t: int, targets, actions, uniforms) -> np.ndarray:
        """Step ``t``'s io measurement: its distribution, the next normalised workspace state."""
        k = self.plan.config.num_outcomes
        blocks = _io_blocks(full, k)
        q = np.einsum("byww->by", blocks).real
        z = q.sum(axis=1)
        if np.any(z <= TINY):
            raise QRNNError(f"At step {t} the neurons' postselection has probability 0 for some sequence; the "
                            "parameters make the circuit's acceptance vanish.")
        p = (q @ self.readout.T) / z[:, None]
        chosen = np.where(actions == DRAW, _draw(p, uniforms), targets)
        weights = np.where((actions == MEASURE)[:, None], 1.0, self.readout[chosen])
        nxt = np.einsum("by,bywv->bwv", weights.astype(blocks.dtype), blocks)
        kept = np.einsum("bww->b", nxt).real
        if np.any(kept <= TINY):
            bad = int(np.argmax(kept <= TINY))
            raise QRNNError(f"Postselecting step {t} of sequence {bad} on its outcome is impossible: it has "
                            "probability 0 under these parameters.")
        run.record(t, p, chosen, kept, z, weights)
        return nxt / kept[:, None, None]

    def _backward(self, params, run: _Run, io_inputs, grad_p) -> np.ndarray:
        """Reverse the run: per-sequence gradient rows ``(B, P)``."""
        cfg, n = self.plan.config, self.plan.num_lanes
        batch, steps = io_inputs.shape
        grads = _Grads(self.plan, batch)
        g_next = np.zeros((batch, 1 << cfg.workspace, 1 << cfg.workspace))
        for t in reversed(range(steps)):
            saved: list = []
            full = self._step(run, run.starts[t], io_inputs[:, t], saved)
            g = self._measure_adjoint(run, full, t, grad_p[:, t], g_next, t + 1 < steps)
            ws_ops, out_ops = run.ops
            cut = len(saved) - len(out_ops)
            for op, state in zip(reversed(out_ops), reversed(saved[cut:])):
                g = self._op_adjoint(op, state, g, n, grads)
            g = _xor_io(g, io_inputs[:, t], cfg.num_outcomes)
            rest = saved[:cut]
            for op, state in zip(reversed(ws_ops), reversed(rest[len(rest) - len(ws_ops):])):
                g = self._op_adjoint(op, state, g, n, grads)
            for q in reversed(range(cfg.input_width)) if self.write_noise is not None else ():
                g = self.apply(g, _dagger(self.write_noise), q, n)
            g5 = g.reshape(batch, 1 << cfg.workspace, cfg.num_outcomes, 1 << cfg.workspace, cfg.num_outcomes)
            g_next = g5[np.arange(batch), :, io_inputs[:, t], :, io_inputs[:, t]]
        return grads.rows(params, run.tables)

    def _measure_adjoint(self, run: _Run, full, t: int, gp, g_next, has_next: bool) -> np.ndarray:
        """The gradient at the end of step ``t``'s channels, from the loss (through the step's
        distribution) and from the next step (through the measurement and the normalisation)."""
        batch, k = full.shape[0], self.plan.config.num_outcomes
        p, z, kept, weights = run.probs[:, t], run.norm[:, t], run.kept[:, t], run.weights[t]
        nw = full.shape[1] // k
        dq = (gp @ self.readout - np.einsum("by,by->b", gp, p)[:, None]) / z[:, None]
        g_blocks = np.zeros((batch, k, nw, nw))
        g_blocks += dq[:, :, None, None] * np.eye(nw)
        if has_next:
            nxt = self._next_state(full, weights)
            inner = np.einsum("bwv,bwv->b", g_next.conj(), nxt).real  # <G, rho> = Re Tr(G^dagger rho)
            g_m = (g_next - inner[:, None, None] * np.eye(nw)) / kept[:, None, None]
            g_blocks = g_blocks + weights[:, :, None, None] * g_m[:, None]
        g = np.zeros((batch, nw, k, nw, k), self.dtype)
        g[:, :, np.arange(k), :, np.arange(k)] = g_blocks.transpose(1, 0, 2, 3)
        return g.reshape(full.shape)

    @staticmethod
    def _next_state(full, weights) -> np.ndarray:
        k = weights.shape[1]
        nxt = np.einsum("by,bywv->bwv", weights.astype(full.dtype), _io_blocks(full, k))
        return nxt / np.einsum("bww->b", nxt).real[:, None, None]

    def _op_adjoint(self, op: _Op, state, g, n: int, grads: _Grads) -> np.ndarray:
        """Reverse one channel: add its parameters' gradient, return the gradient before it."""
        if op.dkraus is not None:
            contrib = _kraus_gradient(op.kraus, op.dkraus, state, g, op.lane, n)
            if op.neuron is not None:
                grads.theta[op.neuron] += contrib
            else:
                grads.unitary[op.unitary] += contrib.sum(axis=(1, 2))
        return self.apply(g, _dagger(op.kraus), op.lane, n)


class _Run:
    """What a pass records: per step the distribution, the outcome taken, its probability, the
    trace before the measurement, the kept trace and the measurement's weights; the states at the
    start of each step (for the reverse pass); the step's channels and the neurons' tables."""

    def __init__(self, ops, tables, batch: int, steps: int, k: int) -> None:
        self.ops, self.tables = ops, tables
        self.probs = np.zeros((batch, steps, k))
        self.outcomes = np.zeros((batch, steps), np.int64)
        self.taken = np.zeros((batch, steps))
        self.acceptance = np.zeros((batch, steps))
        self.norm = np.zeros((batch, steps))
        self.kept = np.zeros((batch, steps))
        self.weights: list[np.ndarray] = [None] * steps
        self.starts: list[np.ndarray] = []

    def record(self, t: int, p, chosen, kept, z, weights) -> None:
        self.probs[:, t], self.outcomes[:, t] = p, chosen
        self.taken[:, t], self.acceptance[:, t] = kept / z, z
        self.norm[:, t], self.kept[:, t], self.weights[t] = z, kept, weights


class _Grads:
    """dL/dTheta per neuron ``(B, hi, lo)`` and dL/d(angle) per work-stage rotation ``(B,)``."""

    def __init__(self, plan: StepPlan, batch: int) -> None:
        n = plan.num_lanes
        self.plan = plan
        self.theta = [np.zeros((batch, 1 << (n - 1 - spec.target), 1 << spec.target)) for spec in plan.config.neurons]
        self.unitary = np.zeros((len(plan.unitary_indices), batch))

    def rows(self, params: np.ndarray, tables) -> np.ndarray:
        plan = self.plan
        n = plan.num_lanes
        grad = np.zeros((self.unitary.shape[1], params.shape[0]))
        for spec, masks, d_theta in zip(plan.config.neurons, plan.subset_masks, self.theta):
            hi, lo = d_theta.shape[1:]
            full = np.zeros((hi, 2, lo, d_theta.shape[0]))
            full[:, 0] = d_theta.transpose(1, 2, 0)
            full = full.reshape(1 << n, -1)
            grad[:, spec.bias_index] = full.sum(axis=0)
            grad[:, spec.weight_slice] = zeta_adjoint(n, full, masks).T
        grad[:, list(plan.unitary_indices)] = self.unitary.T
        return grad


def _view(rho: np.ndarray, lane: int, n: int) -> np.ndarray:
    hi, lo = 1 << (n - 1 - lane), 1 << lane
    return rho.reshape(rho.shape[0], hi, 2, lo, hi, 2, lo)


def _left(k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``K v`` on the row target axis; ``k`` ``(hi, lo, 2, 2)`` ``[out, in]`` per row pattern."""
    out = np.empty(np.broadcast_shapes(v.shape, (1,) * 7), np.result_type(k, v))
    for o in (0, 1):
        out[:, :, o] = k[None, :, :, o, 0, None, None, None] * v[:, :, 0] + k[None, :, :, o, 1, None, None, None] * v[:, :, 1]
    return out


def _right(k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v K^dagger`` on the column target axis; ``k`` ``(hi, lo, 2, 2)`` per column pattern."""
    kc = k.conj()
    out = np.empty(v.shape, np.result_type(k, v))
    for p in (0, 1):
        out[:, :, :, :, :, p] = kc[None, None, None, None, :, :, p, 0] * v[:, :, :, :, :, 0] \
            + kc[None, None, None, None, :, :, p, 1] * v[:, :, :, :, :, 1]
    return out


def _apply(rho: np.ndarray, kraus: np.ndarray, lane: int, n: int) -> np.ndarray:
    """``sum_f K_f rho K_f^dagger`` with each ``K_f`` acting on ``lane`` per pattern of the others."""
    v = _view(rho, lane, n)
    out = None
    for k in kraus:
        term = _right(k, _left(k, v))
        out = term if out is None else out + term
    return out.reshape(rho.shape).astype(rho.dtype, copy=False)


def _dagger(kraus: np.ndarray) -> np.ndarray:
    return kraus.conj().swapaxes(-1, -2)


def _kraus_gradient(kraus, dkraus, state, g, lane: int, n: int) -> np.ndarray:
    """dL/dTheta per sequence and pattern ``(B, hi, lo)`` of ``rho -> sum_f K_f rho K_f^dagger``:
    ``2 Re sum_f <G K_f rho, dK_f>`` restricted to each pattern's 2x2 block."""
    batch, size = state.shape[0], state.shape[1]
    hi, lo = 1 << (n - 1 - lane), 1 << lane
    rows = g.reshape(batch, hi, 2, lo, size)
    total = np.zeros((batch, hi, lo))
    for k, dk in zip(kraus, dkraus):
        a = _left(k, _view(state, lane, n)).reshape(batch, size, hi, 2, lo)
        block = np.einsum("bhola,bahil->bhloi", rows, a)
        total += 2.0 * np.einsum("bhloi,hloi->bhl", block.conj(), np.broadcast_to(dk, (hi, lo, 2, 2))).real
    return total


def _io_blocks(full: np.ndarray, k: int) -> np.ndarray:
    """``(B, K, Nw, Nw)``: the workspace blocks of each io pattern on the diagonal."""
    nw = full.shape[1] // k
    return np.einsum("bwyvy->bywv", full.reshape(full.shape[0], nw, k, nw, k))


def _xor_io(rho: np.ndarray, io: np.ndarray, k: int) -> np.ndarray:
    """The io lanes' pattern XOR-ed with each sequence's ``io`` on both sides (X where a bit is 1)."""
    batch, size = rho.shape[:2]
    view = rho.reshape(batch, size // k, k, size // k, k)
    out = np.empty_like(view)
    for value in np.unique(io):
        sel = io == value
        perm = np.arange(k) ^ value
        out[sel] = view[sel][:, :, perm][:, :, :, :, perm]
    return out.reshape(rho.shape)


def _draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    drawn = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)
    zero = p[np.arange(p.shape[0]), drawn] <= 0.0
    if np.any(zero):
        drawn[zero] = np.argmax(p[zero], axis=1)
    return drawn


def _compress(kraus: np.ndarray, dkraus: np.ndarray | None):
    """As few Kraus maps as give the same channel at these angles: ``K'_r = sum_f K_f V[f, r]`` over
    the right singular vectors of the maps stacked over the angles (their derivatives likewise)."""
    f = kraus.shape[0]
    if f <= 4:
        return kraus, dkraus
    stacked = kraus.reshape(f, -1).T  # (angles * 4, F)
    real = not np.any(stacked.imag)  # real maps stay real: the real-valued path keeps only real parts
    _, s, vh = np.linalg.svd(stacked.real if real else stacked, full_matrices=False)
    keep = s > s[0] * 1e-14 if s.size and s[0] > 0 else np.zeros(0, bool)
    v = vh[keep].conj().T  # (F, r)
    new = np.tensordot(v.T, kraus, axes=(1, 0))
    dnew = None if dkraus is None else np.tensordot(v.T, dkraus, axes=(1, 0))
    return new, dnew
