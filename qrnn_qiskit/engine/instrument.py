"""A neuron as a quantum instrument: the Kraus maps of its target for every kept outcome.

For a computational-basis pattern of its sources, a neuron's gates act on its ``k`` ancillas and
its target only, with the angle ``Theta`` of its parameter block (``RY(Theta)`` on ``a0``). Its
program (:mod:`qrnn_qiskit.core.programs`) is simulated here on those ``k + 1`` qubits, branching
at every ancilla measurement; each branch ends with the ancillas reset to 0, so it is a 2x2 map
``K_f`` of the target, ``f`` the flag bits the branch wrote. The shots the mode keeps are the
branches whose deciding flags read 0 (every branch in ``keep`` mode), and the neuron's channel on
the engine's state is ``rho -> sum_f K_f rho K_f^dagger`` over them, per source pattern.

Readout errors of the ancilla measurements enter the same way: a measurement whose outcome is
``m`` is recorded as ``r`` with probability ``P(r | m)`` (the branch's map is scaled by its square
root), and the recorded bit is what decides acceptance and what a repeat-until-success retry
reads, as on a device. The simulation is vectorised over any number of angles, with
forward-mode derivatives in ``Theta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.programs import neuron_program

__all__ = ["Instrument", "neuron_instrument"]


@dataclass(frozen=True)
class Instrument:
    """The kept branches of a neuron at ``m`` angles: ``kraus[f, j]`` is branch ``f``'s 2x2 map of
    the target (``[out, in]``) at angle ``j``; ``derivative`` its derivative in the angle (or None)."""

    kraus: np.ndarray
    derivative: np.ndarray | None
    flags: tuple[tuple[int, ...], ...]

    @property
    def trace_preserving(self) -> bool:
        """Whether every shot is kept (``sum_f K_f^dagger K_f = 1`` at every angle)."""
        total = np.einsum("fjoi,fjok->jik", self.kraus.conj(), self.kraus)
        return bool(np.allclose(total, np.eye(2), atol=1e-12))


class _Branch:
    __slots__ = ("flags", "v", "dv")

    def __init__(self, flags: tuple, v: np.ndarray, dv: np.ndarray | None) -> None:
        self.flags, self.v, self.dv = flags, v, dv


def _apply_pair(branch: _Branch, bit: int, mat, dmat=None, control: int | None = None) -> None:
    """A 2x2 gate ``mat`` (``(m, 2, 2)`` or ``(2, 2)``) on qubit ``bit``, optionally controlled."""
    dim = branch.v.shape[1]
    n = dim.bit_length() - 1
    shape = (branch.v.shape[0], 1 << (n - 1 - bit), 2, 1 << bit, branch.v.shape[2])
    mat = np.broadcast_to(mat, (branch.v.shape[0], 2, 2))

    def turn(vec):
        view = vec.reshape(shape)
        new = np.einsum("moi,mhilc->mholc", mat, view)
        if control is not None:
            keep = ((np.arange(dim) >> control) & 1) == 0
            new = np.where(keep.reshape(1, shape[1], 2, shape[3], 1), view, new)
        return new.reshape(vec.shape)

    old_v = branch.v
    branch.v = turn(old_v)
    if branch.dv is not None:
        branch.dv = turn(branch.dv)
        if dmat is not None:
            view = old_v.reshape(shape)
            branch.dv = branch.dv + np.einsum("moi,mhilc->mholc", dmat, view).reshape(old_v.shape)


def _ry(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(0.5 * theta), np.sin(0.5 * theta)
    mat = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    dmat = 0.5 * np.stack([np.stack([-s, -c], -1), np.stack([c, -s], -1)], -2)
    return mat.astype(complex), dmat.astype(complex)


def _fixed_ry(angle: float) -> np.ndarray:
    c, s = math.cos(0.5 * angle), math.sin(0.5 * angle)
    return np.array([[c, -s], [s, c]], dtype=complex)


class _Simulator:
    """Runs a neuron program on ``k + 1`` qubits (ancillas at bits ``0..k-1``, the target at bit
    ``k``) for ``m`` angles, keeping one branch per outcome record."""

    def __init__(self, order: int, theta: np.ndarray, derivative: bool, readout: tuple[float, float],
                 deciding: np.ndarray) -> None:
        self.order, self.readout, self.deciding = order, readout, deciding
        self.written = 0  # flag bits the program has written so far (in program order)
        m, dim = theta.size, 1 << (order + 1)
        v = np.zeros((m, dim, 2), complex)
        v[:, 0, 0] = 1.0
        v[:, 1 << order, 1] = 1.0
        # a flag bit a branch never writes (a retry it did not take) stays 0, as a register does
        self.branches = [_Branch((0,) * deciding.size, v, np.zeros_like(v) if derivative else None)]
        self.read: set[int] = set()  # flag bits a retry reads
        self.block, self.dblock = _ry(theta)
        self.block_inv, self.dblock_inv = _ry(-theta)
        self.dblock_inv = -self.dblock_inv

    def run(self, steps, branches: list | None = None) -> list:
        """Run ``steps`` on ``branches`` (all when None); returns what became of those branches."""
        for step in steps:
            chosen = self.branches if branches is None else branches
            kind = step[0]
            if kind == "IF":
                taken = [b for b in chosen if b.flags[step[1]] == 1]
                after = self.run(step[2], taken)
                if branches is not None:
                    branches = [b for b in chosen if b.flags[step[1]] != 1] + after
            elif kind == "M":
                new = self._measure(step[1], chosen)
                if branches is not None:
                    branches = new
            else:
                for branch in chosen:
                    self._gate(branch, step)
        return self.branches if branches is None else branches

    def _gate(self, branch: _Branch, step) -> None:
        kind = step[0]
        if kind == "P":
            mat, dmat = (self.block_inv, self.dblock_inv) if step[1] else (self.block, self.dblock)
            _apply_pair(branch, 0, mat, dmat)
        elif kind == "C":
            _apply_pair(branch, step[1] + 1, _fixed_ry(step[2] * math.pi), control=step[1])
        elif kind == "FIX":
            _apply_pair(branch, step[1] + 1, _fixed_ry(step[2] * math.pi / 2))
        elif kind == "Z":
            low = (1 << (step[1] + 1)) - 1
            phase = np.where((np.arange(branch.v.shape[1]) & low) == 0, np.exp(1j * step[2]), 1.0)
            branch.v = branch.v * phase[None, :, None]
            if branch.dv is not None:
                branch.dv = branch.dv * phase[None, :, None]
        else:  # ("-",)
            branch.v = -branch.v
            if branch.dv is not None:
                branch.dv = -branch.dv

    def _measure(self, level: int, chosen: list) -> list:
        """Split each chosen branch by the true outcome and the recorded one; reset the ancilla."""
        bit_index = self.written
        self.written += 1
        deciding = bool(self.deciding[bit_index])
        e0, e1 = self.readout  # P(read 1 | 0), P(read 0 | 1)
        if deciding or bit_index in self.read:
            weights = {(0, 0): 1.0 - e0, (0, 1): e0, (1, 1): 1.0 - e1, (1, 0): e1}
        else:  # a bit nothing reads: its misreadings are the same branch, weights adding to 1
            weights = {(0, 0): 1.0, (1, 1): 1.0}
        dim = self.branches[0].v.shape[1]
        ones = ((np.arange(dim) >> level) & 1).astype(bool)
        flip = np.arange(dim) ^ (1 << level)
        replaced = []
        for branch in chosen:
            for (true, recorded), weight in weights.items():
                if weight == 0.0 or (deciding and recorded == 1):
                    continue  # impossible, or a shot the mode discards
                scale = math.sqrt(weight)
                mask = ones if true else ~ones
                v = np.where(mask[None, :, None], branch.v, 0.0) * scale
                dv = None if branch.dv is None else np.where(mask[None, :, None], branch.dv, 0.0) * scale
                if true:  # reset: |1> -> |0> on the measured ancilla
                    v = v[:, flip]
                    dv = None if dv is None else dv[:, flip]
                flags = branch.flags[:bit_index] + (recorded,) + branch.flags[bit_index + 1:]
                replaced.append(_Branch(flags, v, dv))
        replaced = self._merge(replaced)
        chosen_ids = {id(b) for b in chosen}
        self.branches = [b for b in self.branches if id(b) not in chosen_ids] + replaced
        return replaced

    def _merge(self, branches: list) -> list:
        """Branches whose read flags agree go on alike, so their maps may be replaced by fewer
        combinations that give the same channel: ``K'_r = sum_f K_f V[f, r]`` over the right
        singular vectors of the maps stacked over every angle at once (one combination for all
        the source patterns, which keeps their coherences; the derivatives combined alike).
        Without this, readout errors make the branches grow fourfold at every read measurement."""
        groups: dict[tuple, list] = {}
        for branch in branches:
            groups.setdefault(tuple(branch.flags[i] for i in sorted(self.read)), []).append(branch)
        out = []
        for group in groups.values():
            if len(group) <= 8:
                out += group
                continue
            shape = group[0].v.shape
            stacked = np.stack([b.v.reshape(-1) for b in group], axis=-1)  # (m * dim * 2, F)
            real = not np.any(stacked.imag)  # real maps stay real (the real engine keeps only real parts)
            _, sv, vh = np.linalg.svd(stacked.real if real else stacked, full_matrices=False)
            mix = vh[sv > sv[0] * 1e-14].conj().T  # (F, r)
            new_v = (stacked @ mix).T.reshape(-1, *shape)
            if group[0].dv is not None:
                dstacked = np.stack([b.dv.reshape(-1) for b in group], axis=-1)
                new_dv = (dstacked @ mix).T.reshape(-1, *shape)
            else:
                new_dv = [None] * len(new_v)
            out += [_Branch(group[0].flags, v, dv) for v, dv in zip(new_v, new_dv)]
        return out


def _read_bits(steps) -> set[int]:
    """The flag bits some ``IF`` of the program reads."""
    found: set[int] = set()
    for step in steps:
        if step[0] == "IF":
            found.add(step[1])
            found |= _read_bits(step[2])
    return found


def neuron_instrument(theta: object, order: int, mode: NeuronMode | str, *, derivative: bool = False,
                      readout: tuple[float, float] = (0.0, 0.0)) -> Instrument:
    """The kept branches of a neuron of ``order`` in ``mode`` at the angles ``theta``.

    Args:
        theta: the parameter block's angles (any shape; flattened to ``m``).
        order: the neuron's order ``k``.
        mode: its :class:`NeuronMode` (``postselect``, ``rus:R``, ``amplify:L``, ``keep``).
        derivative: also the maps' derivatives in the angle.
        readout: ``(P(read 1 | 0), P(read 0 | 1))`` of every ancilla measurement.

    Raises:
        ValueError: for readout probabilities outside ``[0, 1)``.
    """
    mode = NeuronMode.parse(mode)
    if not all(0.0 <= p < 1.0 for p in readout):
        raise ValueError(f"readout error probabilities must lie in [0, 1), got {readout}.")
    theta = np.asarray(theta, dtype=float).reshape(-1)
    sim = _Simulator(order, theta, derivative, readout, mode.acceptance_mask(order))
    program = neuron_program(mode, order)
    sim.read = _read_bits(program)
    sim.run(program)
    rows = [0, 1 << order]
    kraus, dkraus, flags = [], [], []
    for branch in sim.branches:
        rest = np.delete(branch.v, rows, axis=1)
        if np.abs(rest).max(initial=0.0) > 1e-9:
            raise AssertionError("a neuron branch left an ancilla unreset")
        kraus.append(branch.v[:, rows, :])
        dkraus.append(None if branch.dv is None else branch.dv[:, rows, :])
        flags.append(branch.flags)
    stacked = np.stack(kraus) if kraus else np.zeros((0, theta.size, 2, 2), complex)
    dstacked = np.stack(dkraus) if derivative and kraus else None
    return Instrument(stacked, dstacked, tuple(flags))
