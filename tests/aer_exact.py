"""The gate-level circuit's exact distributions on Aer's ``density_matrix`` method, no shots.

A QRNN circuit measures in the middle; Aer's density-matrix method samples such measurements
when it runs shots, but has no exact mode for them. This harness rewrites the circuit so every
measurement becomes unitary bookkeeping plus resets, which the density-matrix method runs
exactly, and reads probabilities saved along the way:

* a flag that decides acceptance: OR-ed, as read (with the readout error), into a reject qubit
  ``R`` by one Kraus channel on (ancilla, ``R``), which also dephases the ancilla as a
  measurement does; the circuit's reset follows;
* a flag that nobody reads (``keep``): dropped; the reset that follows discards the ancilla;
* a flag an ``if_else`` reads (``rus``): read into a record qubit, and the ``if_else`` body
  applied controlled on it (gates as controlled matrices, channels as controlled channels);
* step ``t``'s io: ``P(io, R)`` saved before it is read (``p``); postselected on the target by
  OR-ing "read differs from the target" into ``R``, or, for a measured step, nothing before the
  circuit's own resets.

Each step runs from the normalised accepted state the step before left, so the engine's step
distribution is ``C P(io, R=0) / P(R=0)`` at ``p`` (``C`` the readout matrix) and its neuron
acceptance ``P(R=0)`` there. The noise
acts where the circuit's markers are (``noise_markers=True``), through
:func:`qrnn_qiskit.circuits.noise.aer_noise_model` with the readout errors left to the gadgets.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import Kraus, Operator
from qiskit_aer import AerSimulator
from qiskit_aer.noise import QuantumError

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.noise import aer_noise_model
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.engine.plan import StepPlan


def _kraus(ops, qubits) -> tuple:
    return QuantumError(Kraus([np.asarray(k, complex) for k in ops])).to_instruction(), list(qubits)


def _controlled(ops):
    """The channel applied where a control qubit (the top bit) is 1, nothing where it is 0."""
    dim = ops[0].shape[0]
    one, zero = np.diag([0.0, 1.0]), np.diag([1.0, 0.0])
    return [np.kron(one, k) + (np.kron(zero, np.eye(dim)) if i == 0 else 0) for i, k in enumerate(ops)]


class _Rewriter:
    """Builds one step's rewritten circuit: the source's registers, a reject qubit ``R`` and, for
    rus neurons, two record qubits that hold the flags an ``if_else`` reads. A read is one Kraus
    channel on (the qubit read, the qubit written): the readout error, and the dephasing of the
    qubit read, in one map."""

    def __init__(self, source: QuantumCircuit, readout, deciding, flag_bits, read_later) -> None:
        regs = [QuantumRegister(2, "rec")] if read_later else []
        regs.append(QuantumRegister(1, "R"))  # the last qubit: the top bit of the state's index
        self.r = regs[-1][0]
        self.records = list(regs[0]) if read_later else []
        self.out = QuantumCircuit(*source.qregs, *regs)
        e0, e1 = readout
        self.misread = np.array([[1 - e0, e0], [e1, 1 - e1]])  # [true, read]
        self.deciding, self.flag_bits, self.read_later = deciding, flag_bits, read_later
        self.held: dict = {}  # clbit -> the record qubit that holds it

    def _read_ops(self, into_reject: bool, flip: int, exact: bool = False):
        """Kraus maps on (qubit read, written) that write what is read: OR-ed into a reject
        qubit, or into a record qubit that starts at 0 (as an X); misread unless ``exact``."""
        misread = np.eye(2) if exact else self.misread
        ops = []
        for true in (0, 1):
            proj = np.diag([1.0 - true, float(true)])
            for read in (0, 1):
                weight = np.sqrt(misread[true, read])
                if not weight:
                    continue
                if into_reject:
                    hit = read ^ flip
                    writes = [np.eye(2)] if not hit else [np.array([[0, 0], [1, 0]]), np.array([[0, 0], [0, 1]])]
                else:
                    writes = [np.eye(2) if not read else np.array([[0, 1], [1, 0]])]
                ops += [weight * np.kron(w, proj) for w in writes]
        return ops

    def read(self, qubit, written, *, into_reject: bool, flip: int = 0, control=None, exact: bool = False) -> None:
        ops, qubits = self._read_ops(into_reject, flip, exact), [qubit, written]
        if control is not None:
            ops, qubits = _controlled(ops), [*qubits, control]
        self.out.append(*_kraus(ops, qubits))

    def measure_flag(self, qubit, clbit, control=None) -> None:
        decides = self.deciding[self.flag_bits.index(clbit) % self.deciding.size]
        if clbit in self.read_later:  # an if_else reads it: a record qubit holds it (read once)
            record = next(q for q in self.records if q not in self.held.values())
            self.read(qubit, record, into_reject=False, control=control)
            self.held[clbit] = record
            if decides:
                self.read(record, self.r, into_reject=True, exact=True)
        elif decides:
            self.read(qubit, self.r, into_reject=True, control=control)
        # a flag nobody reads: the reset that follows discards the ancilla

    def gate(self, op, qubits, control=None) -> None:
        if op.name == "reset":  # an ancilla, |0> wherever the body does not run: reset it alike
            self.out.reset(qubits)
            return
        if op.name != "unitary" or control is not None:
            op = UnitaryGate(Operator(op).data)  # the exact matrix: no synthesis between the circuit and Aer
        if control is not None:
            u = op.to_matrix()
            op = UnitaryGate(np.block([[np.eye(len(u)), np.zeros_like(u)], [np.zeros_like(u), u]]))
            qubits = [*qubits, control]  # the control last: the top bit, |1> the block of u
        self.out.append(op, qubits, [])

    def if_else(self, inst) -> None:
        op = inst.operation
        clbit, value = op.condition
        if value != 1 or len(op.blocks) != 1:
            raise NotImplementedError("only if (bit == 1) { ... } without else, as the rus neurons emit")
        control = self.held[clbit]
        body = op.blocks[0]
        qmap = dict(zip(body.qubits, inst.qubits))
        cmap = dict(zip(body.clbits, inst.clbits))
        for sub in body.data:
            if sub.operation.name == "measure":
                self.measure_flag(qmap[sub.qubits[0]], cmap[sub.clbits[0]], control)
            else:
                self.gate(sub.operation, [qmap[q] for q in sub.qubits], control)
        del self.held[clbit]
        self.out.reset(control)


def _conditions(circuit: QuantumCircuit) -> set:
    return {inst.operation.condition[0] for inst in circuit.data if inst.operation.name == "if_else"}


def exact_steps(config, params, inputs, targets, *, mode, noise: NoiseSpec | None, measure: bool,
                synthesis: str = "mc") -> list[QuantumCircuit]:
    """The rewritten circuit of one sequence (``inputs``/``targets`` tokens), one piece a step,
    each with its ``p`` save before the io is read."""
    mode = NeuronMode.parse(mode)
    num_in, steps = config.input_width, len(inputs)
    bits = [(tok >> (num_in - 1 - i)) & 1 for tok in inputs for i in range(num_in)]  # lane 0: the MSB
    source = qrnn_sequence(config, steps, weights=params, inputs=bits, neuron_mode=mode, synthesis=synthesis,
                           noise_markers=True)
    io = list(source.qregs[0])
    out_bits, flag_bits = list(source.cregs[0]), list(source.cregs[1])
    args = (source, (noise or NoiseSpec()).readout, mode.acceptance_mask(config.order), flag_bits, _conditions(source))
    pieces, rw = [], _Rewriter(*args)
    for inst in source.data:
        name = inst.operation.name
        if name == "measure" and inst.clbits[0] in flag_bits:
            rw.measure_flag(inst.qubits[0], inst.clbits[0])
        elif name == "measure":
            t, lane = divmod(out_bits.index(inst.clbits[0]), num_in)
            if lane == 0:
                rw.out.save_probabilities([*io, rw.r], label="p")
            if not measure:
                rw.read(io[lane], rw.r, into_reject=True, flip=(targets[t] >> (num_in - 1 - lane)) & 1)
        elif name == "if_else":
            rw.if_else(inst)
        elif name != "barrier":
            rw.gate(inst.operation, inst.qubits)
            if name == "reset" and inst.qubits[0] == io[-1]:  # the step's end
                pieces.append(rw.out)
                rw = _Rewriter(*args)
    return pieces


def aer_exact(config, params, inputs, targets, *, mode="postselect", noise: NoiseSpec | None = None,
              measure: bool = False, synthesis: str = "mc") -> dict:
    """Per sequence: ``probabilities`` ``(B, T, 2**I)`` in token order, ``acceptance`` and
    ``taken`` ``(B, T)``, from Aer's density-matrix method.

    Each step runs from the normalised state the last one left: the accepted part (``R = 0``) of
    the saved density matrix, renormalised, set again with ``set_density_matrix``. (One circuit
    for the whole sequence would read probabilities of 1e-15 off a trace of 1, to a few digits.)
    """
    plan = StepPlan(config)
    lanes_noise = NoiseSpec(**{**(noise or NoiseSpec()).to_dict(), "readout0": 0.0, "readout1": 0.0})
    sim = AerSimulator(method="density_matrix", noise_model=aer_noise_model(lanes_noise))
    readout = _readout_matrix(noise or NoiseSpec(), config.input_width)
    k = config.num_outcomes
    probs, acceptance, taken = [], [], []
    for seq_in, seq_t in zip(inputs, targets):
        pieces = exact_steps(config, params, list(seq_in), list(seq_t), mode=mode, noise=noise, measure=measure,
                             synthesis=synthesis)
        rho, rows = None, ([], [], [])
        for piece in pieces:
            circ = piece.copy_empty_like()
            if rho is not None:
                circ.set_density_matrix(rho)
            circ.compose(piece, inplace=True)
            circ.save_density_matrix(label="end")
            data = sim.run(circ).result().data(0)  # no transpile: it drops the identity markers
            joint = np.asarray(data["p"]).reshape(2, k)  # [R, io pattern]
            ok = joint[0].sum()
            end = np.asarray(data["end"])
            half = end.shape[0] // 2  # R is the last qubit: the top bit of the index
            kept = end[:half, :half].trace().real
            rho = np.zeros_like(end)
            rho[:half, :half] = end[:half, :half] / kept
            rows[0].append((readout @ joint[0] / ok)[plan.token_order])
            rows[1].append(ok)
            rows[2].append(kept / ok)
        for store, row in zip((probs, acceptance, taken), rows):
            store.append(row)
    return {"probabilities": np.array(probs), "acceptance": np.array(acceptance), "taken": np.array(taken)}


def _readout_matrix(noise: NoiseSpec, width: int) -> np.ndarray:
    """``C[read, true]`` over io patterns, lane ``q`` the bit ``q``."""
    e0, e1 = noise.readout
    one = np.array([[1 - e0, e1], [e0, 1 - e1]])
    out = np.ones((1, 1))
    for _ in range(width):
        out = np.kron(one, out)
    return out
