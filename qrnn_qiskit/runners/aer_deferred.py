"""The training objective's joint probabilities from one Aer density-matrix run per row, with the
mid-circuit measurements deferred: exact, then sampled per step.

What the parameter-shift and SPSA estimators need of a circuit row (a weight vector and a
sequence) is ``Q[t, y]``: the probability that the neurons of steps ``<= t`` succeed, the io
outcomes of steps ``< t`` equal the targets and step ``t`` reads ``y``
(:mod:`qrnn_qiskit.engine.shift`). Sampling it shot by shot through the mid-circuit measurements
costs Aer about 50 us a shot even for a 4-qubit model (every shot is its own simulation). Here
the postselected circuit is rewritten so that nothing is measured:

* one more qubit, ``reject`` (``|0>``), records "this branch has failed";
* each ancilla measurement becomes ``reject <- reject OR ancilla``, one Kraus channel on the two
  (``tests/aer_exact.py`` reads flags the same way to check the engine), and the reset
  that follows it stays;
* before step ``t``'s io measurements, ``save_probabilities`` over the io lanes and ``reject``
  takes ``Q[t, y]`` (the entries with ``reject = 0``); then each io lane is compared with its
  target bit (an ``RX(pi z)`` flips it where the target bit is 1, so that a match reads 0) and
  OR-ed into ``reject``, and the io resets stay.

On the density-matrix method a reset is a channel, so the run is deterministic: one run per row
gives every ``Q[t, y]`` exactly (``tests/runners/test_aer_deferred.py`` holds it equal to the
exact engine's). Shots are then drawn per step: the count of shots that reach step ``t`` and read
each ``y`` is multinomial with probabilities ``Q[t, ·]`` (and ``1 - sum`` for the rest), the
distribution a per-shot run gives each step. The steps' counts are drawn independently; a
per-shot run correlates them across steps, but the loss and its shift-rule gradient are sums over
steps of terms of one step's ``Q`` (the reference loss normalises per step), so their expectation
and each step's variance are the same. The density matrix has ``4**(I + W + order + 1)`` entries:
16 KiB for the simple-bits model, 64 MiB at 11 qubits (the paper's simple-seq model). Noiseless, postselected circuits only.
"""

from __future__ import annotations

import math

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import Kraus
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_aer import AerSimulator
from qiskit_aer.library import SaveProbabilities

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.runners.shots import row_columns

__all__ = ["DeferredJoints", "deferred_circuit"]


def deferred_circuit(circuit: QuantumCircuit, config: QRNNConfig, length: int) -> QuantumCircuit:
    """``circuit`` (postselect mode, registers ``io``/``ws``/``anc`` and ``out``/``flag``) with its
    measurements deferred as the module says; the target bits are the new parameters ``z``
    (``z[t*I + i]``: step ``t``, io lane ``i``), and ``save_probabilities`` results are labelled
    ``q<t>``.

    Raises:
        QRNNError: for control flow (rus neurons), or a measurement into an unknown register.
    """
    width = config.input_width
    out, flag = circuit.cregs[0], circuit.cregs[1]
    reject = QuantumRegister(1, "reject")
    deferred = QuantumCircuit(*circuit.qregs, reject, name=circuit.name + "_deferred")
    channel = _reject_channel()
    io = list(circuit.qregs[0])
    targets = ParameterVector("z", length * width)
    saved = set()
    positions = {bit: k for k, bit in enumerate(out)}
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("if_else", "while_loop", "for_loop", "switch_case"):
            raise QRNNError("Deferred measurement needs postselected neurons; this circuit has control flow (rus).")
        if name != "measure":
            deferred.append(inst.operation, inst.qubits)
            continue
        qubit, clbit = inst.qubits[0], inst.clbits[0]
        if clbit in flag:
            deferred.append(channel, [qubit, reject[0]])
            continue
        if clbit not in out:
            raise QRNNError(f"A measurement into an unknown classical bit {clbit}; expected the 'out' and 'flag' registers.")
        index = positions[clbit]
        step, lane = divmod(index, width)
        if step not in saved:
            saved.add(step)
            deferred.append(SaveProbabilities(width + 1, label=f"q{step}"), [*io, reject[0]])
        deferred.rx(math.pi * targets[index], qubit)
        deferred.append(channel, [qubit, reject[0]])
    return deferred


def _reject_channel() -> Kraus:
    """``reject <- reject OR qubit`` as one channel on ``[qubit, reject]``: Kraus operators
    ``|0><0| x I``, ``|1><1| x |1><0|`` and ``|1><1| x |1><1|`` (the qubit dephased, as a
    measurement does). One bookkeeping qubit instead of the two a unitary OR needs: a 4x smaller
    density matrix."""
    zero, one = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    raise_ = np.array([[0.0, 0.0], [1.0, 0.0]])
    # qubit order [qubit, reject]: the qubit is the low bit, so each operator is kron(reject part, qubit part)
    return Kraus([np.kron(np.eye(2), zero), np.kron(raise_, one), np.kron(one, one)])


class DeferredJoints:
    """``Q`` for rows of weight vectors x sequences from deferred circuits on Aer's density matrix.

    Args:
        config: the model.
        circuit_fn: ``length -> circuit`` (the runner's postselected circuit with parameters ``w``, ``x``).
        device: Aer device (``CPU`` or ``GPU``).
        seed: seed of the per-step shot draws.
    """

    def __init__(self, config: QRNNConfig, circuit_fn, *, device: str = "CPU", seed: int | None = None) -> None:
        self.config = config
        self._circuit_fn = circuit_fn
        self._circuits: dict[int, QuantumCircuit] = {}
        # rows run side by side, one a thread (measured on two cores: 1.5 s for 434 simple-bits rows
        # against 2.7 s one at a time with the threads inside each small density matrix)
        self.simulator = AerSimulator(method="density_matrix", device=device, max_parallel_experiments=0)
        self.rng = np.random.default_rng(seed)

    def circuit(self, length: int) -> QuantumCircuit:
        """The deferred circuit of ``length`` steps (built once per length)."""
        if length not in self._circuits:
            deferred = deferred_circuit(self._circuit_fn(length), self.config, length)
            # to the method's gates (it has no cry); the save instructions pass through
            pm = generate_preset_pass_manager(optimization_level=0, backend=self.simulator)
            self._circuits[length] = pm.run(deferred)
        return self._circuits[length]

    def exact(self, vectors: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Exact ``Q``: ``(N, B, T, 2**I)`` for ``N`` weight vectors and ``B`` sequences (tokens)."""
        cfg = self.config
        batch, steps = inputs.shape
        circuit = self.circuit(steps)
        columns = row_columns(cfg, vectors, inputs, targets)
        rows = len(vectors) * batch
        # every row bound by Aer in one run (measured: 6.3 ms a row on the simple-bits model, against
        # 10.5 ms for rows bound in Qiskit, one circuit each); tests hold the figures to the engine's
        binds = {p: columns[p.vector.name][:, p.index].tolist() for p in circuit.parameters}
        result = self.simulator.run([circuit], parameter_binds=[binds], shots=1).result()
        if not result.success:
            raise QRNNError(f"Aer's density-matrix run failed: {result.status}")
        order = _token_order(cfg.input_width)
        joint = np.empty((rows, steps, cfg.num_outcomes))
        for row in range(rows):
            data = result.data(row)
            for t in range(steps):
                joint[row, t] = np.asarray(data[f"q{t}"])[: cfg.num_outcomes][order]
        return joint.reshape(len(vectors), batch, steps, cfg.num_outcomes)

    def sampled(self, vectors: np.ndarray, inputs: np.ndarray, targets: np.ndarray, shots: int) -> np.ndarray:
        """``Q`` estimated from ``shots`` shots a row, drawn per step from the exact ``Q``."""
        exact = np.clip(self.exact(vectors, inputs, targets), 0.0, None)
        rest = np.clip(1.0 - exact.sum(axis=-1, keepdims=True), 0.0, None)
        probabilities = np.concatenate([exact, rest], axis=-1)
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        counts = self.rng.multinomial(shots, probabilities)
        return counts[..., :-1] / shots


def _token_order(width: int) -> np.ndarray:
    """``order[y]``: the index of token ``y`` among ``save_probabilities`` over the io lanes,
    whose bit ``i`` is lane ``i`` (lane 0 is the token's most significant bit)."""
    tokens = np.arange(1 << width)
    return np.array([sum(((y >> (width - 1 - i)) & 1) << i for i in range(width)) for y in tokens])
