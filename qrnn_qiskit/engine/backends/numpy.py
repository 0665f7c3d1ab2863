"""The numpy backend of the exact engine: the reference every other backend is tested against.

Batch-vectorised and float64; real amplitudes for postselected neurons, complex ones for amplified
neurons (the only backend that computes those). States keep the batch innermost (see
:mod:`qrnn_qiskit.engine.plan`).

How a step is computed. Conditioned on its ancillas reading 0, a neuron on target lane ``t`` maps
the two amplitudes ``(a, b)`` of every source pattern ``x`` to ``(C a - S b, S a + C b)``: for a
postselected neuron ``C = cos(Theta(x)/2)**N``, ``S = sin(Theta(x)/2)**N``, ``N = 2**order``; for
an amplified one the complex ``A, B`` of :mod:`qrnn_qiskit.engine.amplified`. These maps are
linear, so the state is renormalised once per step: the norm lost in a step is the probability
that all of its neurons succeed. During the input and work stages the io lanes hold the input's
basis state, so only the ``2**W`` workspace amplitudes are simulated and the io pattern selects
the neuron's table column; the full ``2**(I+W)`` state exists only for the output stage.

The reverse pass keeps the normalised workspace state at the start of each step and recomputes a
step's intermediate states when it is differentiated. Gradients are kept per sequence (rows), so
that a batch split into shards gives the same rows as the whole batch.
"""

from __future__ import annotations

import math

import numpy as np

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.engine.amplified import amplified_activation
from qrnn_qiskit.engine.backends.reductions import TINY
from qrnn_qiskit.engine.plan import StepPlan, activation, bit_reverse, lane_pairs, zeta_adjoint

__all__ = ["NeuronTables", "NumpyBackend", "loss_rows", "outcome_weights", "rotate"]


class NeuronTables:
    """Per-neuron activation tables for one parameter vector.

    ``cs[k]`` is neuron ``k``'s ``(C, S)`` in the layout its pass uses (:meth:`StepPlan.layout_tables`);
    ``dcs[k]`` their derivatives in ``Theta`` (with ``derivative``); ``unitary[u]`` the cosine and
    sine of work-stage rotation ``u``'s half angle."""

    def __init__(self, plan: StepPlan, mode: NeuronMode, params: np.ndarray, derivative: bool = False) -> None:
        cfg = plan.config
        theta_full = plan.neuron_angles(params)  # full-pattern angle per neuron, (N, 2**n)
        if mode.is_amplify:
            self.cs, self.dcs = self._amplified(plan, mode, theta_full, derivative)
        else:
            c_all, s_all = activation(theta_full, plan.power)
            self.cs = [plan.layout_tables(spec.target, c, s) for spec, c, s in zip(cfg.neurons, c_all, s_all)]
            self.dcs = None
            if derivative:
                dc_all, ds_all = activation(theta_full, plan.power, derivative=True)
                self.dcs = [plan.layout_tables(spec.target, dc, ds) for spec, dc, ds in zip(cfg.neurons, dc_all, ds_all)]
        self.unitary = [(math.cos(0.5 * params[i]), math.sin(0.5 * params[i])) for i in plan.unitary_indices]

    @staticmethod
    def _amplified(plan: StepPlan, mode: NeuronMode, theta_full: np.ndarray, derivative: bool):
        """Amplified neurons' ``(A, B)`` (and derivatives) in one batched simulation, computed only
        at the angles a layout holds (half of all patterns)."""
        angles = [plan.layout_tables(spec.target, row, row)[0] for spec, row in zip(plan.config.neurons, theta_full)]
        flat = np.concatenate([a.reshape(-1) for a in angles])
        values = amplified_activation(flat, plan.config.order, mode.uses, derivative)
        bounds = np.cumsum([0] + [a.size for a in angles])
        split = [[v[lo:hi].reshape(a.shape) for v in values] for lo, hi, a in zip(bounds[:-1], bounds[1:], angles)]
        return [(p[0], p[1]) for p in split], ([(p[2], p[3]) for p in split] if derivative else None)


def rotate(a: np.ndarray, b: np.ndarray, c, s, buf: np.ndarray, buf2: np.ndarray) -> None:
    """In place: ``(a, b) <- (c a - s b, s a + c b)`` (``c``, ``s`` arrays or scalars)."""
    np.multiply(c, a, out=buf)
    np.multiply(s, b, out=buf2)
    buf -= buf2
    np.multiply(s, a, out=buf2)
    b *= c
    b += buf2
    a[...] = buf


def outcome_weights(full: np.ndarray) -> np.ndarray:
    """``q[b, y] = sum_w |full[w, y, b]|**2``, real or complex states."""
    if np.iscomplexobj(full):
        return np.einsum("wyb,wyb->by", full.real, full.real) + np.einsum("wyb,wyb->by", full.imag, full.imag)
    return np.einsum("wyb,wyb->by", full, full)


def loss_rows(probs: np.ndarray, targets: np.ndarray, scored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence, the sum over the scored steps of ``logsumexp(p) - p[target]`` (in any outcome
    order, ``targets`` in the same), and its gradient in ``probs``."""
    rows = np.zeros(probs.shape[0])
    grad = np.zeros_like(probs)
    index = np.arange(probs.shape[0])
    for t in np.flatnonzero(scored):
        p, y = probs[:, t], targets[:, t]
        m = p.max(axis=1, keepdims=True)
        exp = np.exp(p - m)
        total = exp.sum(axis=1)
        grad[:, t] = exp / total[:, None]
        grad[index, t, y] -= 1.0
        rows += np.log(total) + m[:, 0] - p[index, y]
    return rows, grad


class NumpyBackend:
    """The exact engine in numpy (see the module's docstring).

    Args:
        plan: the model's step plan.
        mode: the neurons' meaning, ``postselect`` or ``amplify:L``.
    """

    def __init__(self, plan: StepPlan, mode: NeuronMode) -> None:
        self.plan = plan
        self.mode = mode
        self.dtype = complex if mode.is_amplify else float

    # ------------------------------------------------------------------ one step
    def _onehot(self, io_in: np.ndarray) -> np.ndarray:
        onehot = np.zeros((self.plan.config.num_outcomes, io_in.shape[0]))
        onehot[io_in, np.arange(io_in.shape[0])] = 1.0
        return onehot

    def _ws_pass(self, tables: NeuronTables, psi: np.ndarray, onehot: np.ndarray, saved: list | None) -> None:
        """Input and work stages on the workspace state ``psi`` (2**W, B), in place."""
        num_ws = self.plan.config.workspace
        half = (psi.shape[0] // 2,) + psi.shape[1:]
        buf, buf2 = np.empty(half, self.dtype), np.empty(half, self.dtype)
        for op in self.plan.ws_ops:
            if saved is not None:
                saved.append(psi.copy())
            a, b = lane_pairs(psi, op.lane, num_ws)
            shape = a.shape
            if op.kind == "u":
                c, s = tables.unitary[op.index]
            else:
                c_tab, s_tab = tables.cs[op.index]
                c, s = (c_tab @ onehot).reshape(shape), (s_tab @ onehot).reshape(shape)
            rotate(a, b, c, s, buf.reshape(shape), buf2.reshape(shape))

    def _out_pass(self, tables: NeuronTables, full: np.ndarray, saved: list | None) -> None:
        """Output stage on the full state ``full`` (2**n, B), in place."""
        half = (full.shape[0] // 2,) + full.shape[1:]
        buf, buf2 = np.empty(half, self.dtype), np.empty(half, self.dtype)
        for op in self.plan.out_ops:
            c_tab, s_tab = tables.cs[op.index]
            if saved is not None:
                saved.append(full.copy())
            a, b = lane_pairs(full, op.lane, self.plan.num_lanes)
            rotate(a, b, c_tab, s_tab, buf.reshape(a.shape), buf2.reshape(a.shape))

    def step(self, tables: NeuronTables, psi_ws: np.ndarray, io_in: np.ndarray, saved: list | None = None) -> np.ndarray:
        """Unnormalised full state after one step's neurons, shape ``(2**W, 2**I, B)``."""
        cfg = self.plan.config
        batch = psi_ws.shape[1]
        psi = psi_ws.copy()
        self._ws_pass(tables, psi, self._onehot(io_in), saved)
        full = np.zeros((1 << cfg.workspace, cfg.num_outcomes, batch), self.dtype)
        full[:, 0, :] = psi
        self._out_pass(tables, full.reshape(-1, batch), saved)
        return full

    # ------------------------------------------------------------------ forward
    def forward(self, params, io_inputs, io_targets, draw, uniforms, *, tables=None, starts=None):
        """Probabilities, outcomes, taken probabilities and acceptance, all in io order; a step's
        outcome is drawn at ``uniforms[b, t]`` where ``draw[b, t]``, else it is ``io_targets[b, t]``.
        With ``starts`` (a list) the normalised state at the start of each step is appended to it."""
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        tables = tables if tables is not None else NeuronTables(self.plan, self.mode, params)
        psi = np.zeros((1 << cfg.workspace, batch), self.dtype)
        psi[0, :] = 1.0
        probs = np.empty((batch, steps, cfg.num_outcomes))
        outcomes = np.empty((batch, steps), dtype=np.int64)
        taken, acceptance = np.empty((batch, steps)), np.empty((batch, steps))
        rows = np.arange(batch)
        for t in range(steps):
            if starts is not None:
                starts.append(psi)
            full = self.step(tables, psi, io_inputs[:, t])
            q = outcome_weights(full)
            z = q.sum(axis=1)
            if np.any(z <= TINY):
                raise QRNNError(
                    f"At step {t} the neurons' postselection has probability 0 for some sequence; "
                    "the parameters make the circuit's acceptance vanish."
                )
            p = q / z[:, None]
            y = io_targets[:, t] if io_targets is not None else np.zeros(batch, np.int64)
            if draw[:, t].any():
                y = np.where(draw[:, t], self._draw(p, uniforms[:, t]), y)
            self._check_possible(q[rows, y], y, t)
            psi = full[:, y, rows] / np.sqrt(q[rows, y])
            probs[:, t], outcomes[:, t], taken[:, t], acceptance[:, t] = p, y, p[rows, y], z
        return probs, outcomes, taken, acceptance

    @staticmethod
    def _draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Inverse-CDF draws, never an outcome of probability 0 through rounding."""
        drawn = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)
        zero = p[np.arange(p.shape[0]), drawn] <= 0.0
        if np.any(zero):
            drawn[zero] = np.argmax(p[zero], axis=1)
        return drawn

    def _check_possible(self, qy: np.ndarray, y: np.ndarray, t: int) -> None:
        if np.any(qy <= TINY):
            bad = int(np.argmax(qy <= TINY))
            token = int(bit_reverse(np.array([y[bad]]), self.plan.config.input_width)[0])
            raise QRNNError(
                f"Postselecting step {t} of sequence {bad} on outcome {token} is impossible: it has "
                "probability 0 under these parameters."
            )

    # ------------------------------------------------------------------ gradient
    def loss_and_gradient_rows(self, params, io_inputs, io_targets, scored):
        """Per-sequence loss sums and gradient rows under teacher forcing (io order in and out).

        A sequence's row has the same bits whatever batch it is in: numpy reduces an axis of
        length 1 otherwise (pairwise) than a strided one, so a lone sequence is run beside a copy
        of itself."""
        if io_inputs.shape[0] == 1:
            twice = self.loss_and_gradient_rows(params, np.repeat(io_inputs, 2, 0), np.repeat(io_targets, 2, 0), scored)
            return tuple(a[:1] for a in twice)
        return self._gradient(params, io_inputs, io_targets, lambda probs: loss_rows(probs, io_targets, scored))

    def vjp_rows(self, params, io_inputs, io_targets, grad_probs):
        """Per-sequence gradient rows of ``sum(grad_probs * probs)`` under teacher forcing, for any
        upstream gradient ``grad_probs`` ``(B, T, K)`` of the step distributions (io order in and
        out); also the distributions and acceptances."""
        return self._gradient(params, io_inputs, io_targets, lambda probs: (None, grad_probs))[1:]

    def _gradient(self, params, io_inputs, io_targets, upstream):
        """The teacher-forced pass, then its reverse from ``upstream(probs) -> (extra, grad_p)``:
        ``(extra, gradient rows, probs, acceptance)``."""
        tables = NeuronTables(self.plan, self.mode, params, derivative=True)
        starts: list = []
        none = np.zeros(io_inputs.shape, bool)
        probs, _, _, acceptance = self.forward(params, io_inputs, io_targets, none, none, tables=tables,
                                               starts=starts)
        extra, grad_p = upstream(probs)
        return extra, self._backward(params, tables, io_inputs, starts, io_targets, grad_p), probs, acceptance

    def _backward(self, params, tables: NeuronTables, io_inputs, starts, y_io, grad_p) -> np.ndarray:
        """Reverse the teacher-forced pass: per-sequence gradient rows ``(B, P)``."""
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        grads = _Gradients(tables, len(self.plan.unitary_indices), batch, self.dtype)
        grad_next = np.zeros((1 << cfg.workspace, batch))
        for t in reversed(range(steps)):
            saved: list = []
            full = self.step(tables, starts[t], io_inputs[:, t], saved)
            g_flat = self._step_gradient(full, y_io[:, t], grad_p[:, t], grad_next).reshape(-1, batch)
            cut = len(self.plan.ws_ops)
            self._out_backward(tables, saved[cut:], g_flat, grads)
            g_ws = np.ascontiguousarray(g_flat.reshape(1 << cfg.workspace, cfg.num_outcomes, batch)[:, 0, :])
            self._ws_backward(tables, saved[:cut], g_ws, io_inputs[:, t], grads)
            grad_next = g_ws
        return grads.rows(self.plan, params)

    @staticmethod
    def _step_gradient(full, y, gp, grad_next) -> np.ndarray:
        """The gradient at the end of a step's neurons, from the loss through ``p = q / z`` with
        ``q = sum_w |full|**2``, and from the next step through ``psi_next = full[:, y] / sqrt(q_y)``."""
        rows = np.arange(full.shape[2])
        q = outcome_weights(full)
        z = q.sum(axis=1)
        p = q / z[:, None]
        root = np.sqrt(q[rows, y])
        gq = (gp - np.einsum("by,by->b", gp, p)[:, None]) / z[:, None]
        g_full = 2.0 * full * gq.T[None, :, :]
        psi_next = full[:, y, rows] / root
        proj = np.einsum("wb,wb->b", psi_next.conj(), grad_next).real
        g_full[:, y, rows] += (grad_next - psi_next * proj) / root
        return g_full

    def _out_backward(self, tables: NeuronTables, saved: list, g_flat: np.ndarray, grads: _Gradients) -> None:
        """The output stage reversed, in place on ``g_flat``: ``(a', b') = (C a - S b, S a + C b)``,
        so ``dL/dC += ga' a* + gb' b*``, ``dL/dS += gb' a* - ga' b*`` and ``g <- M^dagger g``."""
        n = self.plan.num_lanes
        for op, state in zip(reversed(self.plan.out_ops), reversed(saved)):
            c_tab, s_tab = tables.cs[op.index]
            a, b = lane_pairs(state, op.lane, n)
            ga, gb = lane_pairs(g_flat, op.lane, n)
            a, b = a.conj(), b.conj()  # no-op copies of real states
            grads.c[op.index] += (ga * a + gb * b)[:, :, None, :]
            grads.s[op.index] += (gb * a - ga * b)[:, :, None, :]
            rotate(ga, gb, c_tab.conj(), -s_tab.conj(), np.empty(ga.shape, self.dtype), np.empty(ga.shape, self.dtype))

    def _ws_backward(self, tables: NeuronTables, saved: list, g_ws: np.ndarray, io_in: np.ndarray,
                     grads: _Gradients) -> None:
        """The input and work stages reversed, in place on ``g_ws``."""
        num_ws, batch = self.plan.config.workspace, g_ws.shape[1]
        onehot, cols = self._onehot(io_in), np.arange(batch)
        half = (g_ws.shape[0] // 2, batch)
        buf, buf2 = np.empty(half, self.dtype), np.empty(half, self.dtype)
        for op, state in zip(reversed(self.plan.ws_ops), reversed(saved)):
            a, b = lane_pairs(state, op.lane, num_ws)
            ga, gb = lane_pairs(g_ws, op.lane, num_ws)
            shape = a.shape
            if op.kind == "u":
                c, s = tables.unitary[op.index]
                # d(a', b')/d(angle) = (-(s a + c b), c a - s b) / 2
                grads.unitary[op.index] += 0.5 * ((gb.conj() * (c * a - s * b)).sum(axis=(0, 1))
                                                  - (ga.conj() * (s * a + c * b)).sum(axis=(0, 1))).real
                rotate(ga, gb, c, -s, buf.reshape(shape), buf2.reshape(shape))
                continue
            c_tab, s_tab = tables.cs[op.index]
            a, b = a.conj(), b.conj()
            grads.c[op.index][:, io_in, cols] += (ga * a + gb * b).reshape(-1, batch)
            grads.s[op.index][:, io_in, cols] += (gb * a - ga * b).reshape(-1, batch)
            cg, sg = (c_tab @ onehot).reshape(shape).conj(), (s_tab @ onehot).reshape(shape).conj()
            rotate(ga, gb, cg, -sg, buf.reshape(shape), buf2.reshape(shape))


class _Gradients:
    """``dL/dC``, ``dL/dS`` per neuron in its table layout with one trailing axis per sequence,
    and ``dL/d(angle)`` per work-stage rotation and sequence."""

    def __init__(self, tables: NeuronTables, num_unitaries: int, batch: int, dtype) -> None:
        self.c = [np.zeros(cs[0].shape + (batch,), dtype) for cs in tables.cs]
        self.s = [np.zeros(cs[1].shape + (batch,), dtype) for cs in tables.cs]
        self.unitary = np.zeros((num_unitaries, batch))
        self.tables = tables

    def rows(self, plan: StepPlan, params: np.ndarray) -> np.ndarray:
        """The flat parameter gradient of every sequence, ``(B, P)``."""
        grad = np.zeros((self.unitary.shape[1], params.shape[0]))
        for spec, masks, (dc, ds), d_c, d_s in zip(plan.config.neurons, plan.subset_masks, self.tables.dcs,
                                                   self.c, self.s):
            # complex C, S: dL/dTheta = Re(conj(dL/dC) dC/dTheta + conj(dL/dS) dS/dTheta)
            g = plan.scatter_theta(spec.target, (d_c.conj() * dc[..., None] + d_s.conj() * ds[..., None]).real)
            grad[:, spec.bias_index] = g.sum(axis=0)
            grad[:, spec.weight_slice] = zeta_adjoint(plan.num_lanes, g, masks).T
        grad[:, list(plan.unitary_indices)] = self.unitary.T
        return grad
