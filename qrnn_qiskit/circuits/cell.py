"""Gate-level QRNN cell and unrolled sequence.

One cell step on the registers ``io`` (I), ``ws`` (W) and ``anc`` (order):

1. write the step's input bits: ``RY(pi * x)`` on each io lane (exactly X for a bit of 1, the
   identity for 0, since the io lanes start in ``|0>``), so one circuit serves every input;
2. input stage: one neuron per workspace lane, ascending;
3. work stages ``s = 0 .. S-1``: ``RY(u[s, j])`` on every workspace lane, then one neuron per lane;
4. unwrite the input with ``RY(-pi * x)``;
5. output stage: one neuron per io lane, ascending;
6. measure the io lanes into the classical register ``out`` and reset them.

Classical bits: ``out[t*I + i]`` is io lane ``i`` measured at step ``t``;
``flag[(t*N + n)*F + m]`` is the ``m``-th ancilla measurement of neuron ``n`` (cell order) at step
``t``, with ``N`` neurons per step and ``F = 2**k - 1`` flags per neuron in postselect mode (a shot
is accepted when every flag reads 0); in rus mode ``F`` and the flags that decide acceptance are
given by :func:`qrnn_qiskit.core.modes.rus_acceptance_mask`.

Parameters: ``weights`` (default ``ParameterVector("w", P)``) in the layout documented in
:mod:`qrnn_qiskit.core.config`; ``inputs`` (default ``ParameterVector("x", T*I)``) with ``x[t*I + i]`` the
bit on io lane ``i`` at step ``t`` (lane 0 is the token's most significant bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from qiskit.circuit import (
    Barrier,
    CircuitInstruction,
    ClassicalRegister,
    Measure,
    ParameterExpression,
    ParameterVector,
    QuantumCircuit,
    QuantumRegister,
    Reset,
)
from qiskit.circuit.library import RYGate, UnitaryGate, XGate

from qrnn_qiskit.circuits.neuron import NeuronGates, emit_neuron
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode

__all__ = ["NEURON_NOISE", "WRITE_NOISE", "qrnn_cell", "qrnn_sequence", "weight_parameters", "input_parameters",
           "checked_values", "sequence_registers"]

#: the labels of the identity gates ``noise_markers`` puts where the engine's noise acts
NEURON_NOISE = "qrnn_neuron_noise"
WRITE_NOISE = "qrnn_write_noise"

ParameterLike = ParameterExpression | float


def weight_parameters(config: QRNNConfig, parameter_prefix: str = "w") -> ParameterVector:
    """A new :class:`ParameterVector` of the model's ``P`` weights."""
    return ParameterVector(parameter_prefix, config.num_parameters)


def input_parameters(config: QRNNConfig, length: int, parameter_prefix: str = "x") -> ParameterVector:
    """A new :class:`ParameterVector` of ``length * I`` input bits (step-major, lane 0 first)."""
    return ParameterVector(parameter_prefix, length * config.input_width)


def _coerce_values(
    values: object, expected: int, name: str, hint: str
) -> list[ParameterLike] | np.ndarray:
    if isinstance(values, ParameterVector) or (
        isinstance(values, Sequence) and any(isinstance(v, ParameterExpression) for v in values)
    ):
        items = list(values)
    else:
        try:
            items = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numbers or Qiskit parameters.") from exc
        if items.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {items.shape}.")
        if not np.all(np.isfinite(items)):
            raise ValueError(f"{name} contain NaN or infinite values.")
    if len(items) != expected:
        raise ValueError(f"Expected {expected} {name} ({hint}), got {len(items)}.")
    return items


def qrnn_sequence(
    config: QRNNConfig,
    length: int,
    *,
    weights: Sequence[ParameterLike] | np.ndarray | None = None,
    inputs: Sequence[ParameterLike] | np.ndarray | None = None,
    insert_barriers: bool = False,
    noise_markers: bool = False,
    neuron_mode: str | NeuronMode = "postselect",
    synthesis: str = "auto",
    name: str = "QRNN",
) -> QuantumCircuit:
    """The QRNN unrolled over ``length`` steps, with mid-circuit measurements.

    Args:
        config: model hyperparameters.
        length: number of cell steps ``T`` (tokens fed).
        weights: ``P`` numbers or parameters in the documented layout; a new
            ``ParameterVector("w", P)`` if omitted. Numbers give a circuit with bound weights.
        inputs: ``T*I`` input bits (0/1) or parameters, step-major; a new
            ``ParameterVector("x", T*I)`` if omitted. Bits given as numbers become X gates.
        insert_barriers: put a barrier between stages (for drawings).
        noise_markers: put identity gates labelled :data:`NEURON_NOISE` on every lane after each
            neuron and :data:`WRITE_NOISE` on the io lanes after each input write: where the exact
            engine's noise model (:class:`~qrnn_qiskit.core.noise.NoiseSpec`) acts, so that a Qiskit
            ``NoiseModel`` attaching those channels to the labels (:func:`qrnn_qiskit.circuits.noise.aer_noise_model`)
            runs the engine's noise at the gate level.
        neuron_mode: a :class:`~qrnn_qiskit.core.modes.NeuronMode` or its spelling:
            ``"postselect"`` (each ancilla measured and reset; failing shots are discarded
            afterwards) or ``"rus:R"`` (a failed ancilla triggers the neuron's correction and a
            retry, ``R`` times; see :mod:`qrnn_qiskit.circuits.rus`) or ``"amplify:L"`` (fixed-point
            amplitude amplification of every neuron, its ancillas measured once at its end; see
            :mod:`qrnn_qiskit.circuits.amplify`).
        synthesis: how a neuron's parameter block is written, one of
            :data:`~qrnn_qiskit.circuits.synthesis.STRATEGIES`: ``"mc"``, one (multi-)controlled
            RY per subset; ``"multiplexer"``, a Gray-code uniformly controlled RY;
            ``"phase-polynomial"``, a CNOT-phase network; ``"diagonal"``, one numeric
            ``DiagonalGate`` between Cliffords (Aer-native, compact); ``"ucgate"``, one ``UCGate`` (numeric
            weights only; native in Aer); ``"auto"``, the symbolic one with the fewest CNOTs per
            neuron shape (see :mod:`qrnn_qiskit.circuits.synthesis`).
        name: circuit name.

    Returns:
        A circuit on the registers ``io``, ``ws``, ``anc`` with classical registers ``out`` and
        ``flag``; ``circuit.metadata["qrnn"]`` records the configuration, length and neuron mode.

    Raises:
        ValueError: for a non-positive length, wrong weight or input counts, input bits that are
            not 0/1, or an unknown neuron mode or synthesis.
    """
    length, weights, inputs = checked_values(config, length, weights, inputs)
    mode = NeuronMode.parse(neuron_mode)
    circuit = sequence_registers(config, length, mode, name)
    emitter = _CellEmitter(circuit, config, weights, inputs, mode, synthesis, insert_barriers, noise_markers)
    for step in range(length):
        emitter.step(step)
    return circuit


def sequence_registers(config: QRNNConfig, length: int, mode: NeuronMode, name: str) -> QuantumCircuit:
    """An empty circuit on ``io``, ``ws``, ``anc`` with the classical registers ``out`` and ``flag``."""
    io = QuantumRegister(config.input_width, "io")
    ws = QuantumRegister(config.workspace, "ws")
    anc = QuantumRegister(config.order, "anc")
    out = ClassicalRegister(length * config.input_width, "out")
    flag = ClassicalRegister(length * config.num_neurons * mode.flags_per_neuron(config.order), "flag")
    circuit = QuantumCircuit(io, ws, anc, out, flag, name=name)
    circuit.metadata = {"qrnn": {**config.to_dict(), "length": length, "neuron_mode": str(mode)}}
    return circuit


def checked_values(config: QRNNConfig, length, weights, inputs) -> tuple[int, list | np.ndarray, list | np.ndarray]:
    """The length, weights and input bits of :func:`qrnn_sequence`, checked (parameters where omitted)."""
    if not isinstance(config, QRNNConfig):
        raise TypeError(f"config must be a QRNNConfig, got {type(config).__name__}.")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer number of steps, got {length!r}.")
    length = int(length)
    num_in = config.input_width
    if weights is None:
        weights = weight_parameters(config)
    weights = _coerce_values(weights, config.num_parameters, "weights", f"the parameter count of {config}")
    if inputs is None:
        inputs = input_parameters(config, length)
    inputs = _coerce_values(inputs, length * num_in, "inputs", f"{length} steps x {num_in} io lanes")
    if isinstance(inputs, np.ndarray) and not np.all((inputs == 0) | (inputs == 1)):
        bad = sorted(set(inputs[(inputs != 0) & (inputs != 1)].tolist()))[:5]
        raise ValueError(f"Input bits must be 0 or 1, got {bad}.")
    return length, weights, inputs


class _CellEmitter:
    """Appends cell steps to a circuit built by :func:`qrnn_sequence` (gates made once, reused)."""

    def __init__(self, circuit, config, weights, inputs, mode: NeuronMode, synthesis, insert_barriers,
                 noise_markers: bool = False) -> None:
        self.circuit, self.config, self.inputs, self.mode = circuit, config, inputs, mode
        self.io, self.anc = circuit.qregs[0], list(circuit.qregs[2])
        self.out, self.flag = circuit.cregs
        self.lanes = [*circuit.qregs[0], *circuit.qregs[1]]
        self.flags_per_neuron = mode.flags_per_neuron(config.order)
        self.neurons = [
            (spec, NeuronGates(spec.subsets, list(weights[spec.weight_slice]), weights[spec.bias_index],
                                config.bias, synthesis=synthesis, sources=spec.sources))
            for spec in config.neurons
        ]
        self.unitaries = {
            (s, lane): RYGate(weights[config.unitary_index(s, lane)])
            for s in range(config.stages)
            for lane in config.workspace_lanes
        }
        if isinstance(inputs, np.ndarray):
            self.write = self.unwrite = None  # numeric bits: X where a bit is 1
        else:
            self.write = [RYGate(math.pi * x) for x in inputs]
            self.unwrite = [RYGate(-math.pi * x) for x in inputs]
        self.x_gate, self.measure, self.reset = XGate(), Measure(), Reset()
        self.barrier = Barrier(circuit.num_qubits) if insert_barriers else None
        self.markers = (UnitaryGate(np.eye(2), label=NEURON_NOISE), UnitaryGate(np.eye(2), label=WRITE_NOISE)) \
            if noise_markers else None

    def _append(self, operation, qubits, clbits=()) -> None:
        self.circuit._append(CircuitInstruction(operation, tuple(qubits), tuple(clbits)))

    def _stage_barrier(self) -> None:
        if self.barrier is not None:
            self._append(self.barrier, self.circuit.qubits)

    def _write_inputs(self, step: int, gates: list | None, marked: bool = False) -> None:
        num_in = self.config.input_width
        for i in range(num_in):
            k = step * num_in + i
            if gates is not None:
                self._append(gates[k], (self.io[i],))
            elif self.inputs[k] == 1:
                self._append(self.x_gate, (self.io[i],))
        if self.markers is not None and marked:
            for i in range(num_in):
                self._append(self.markers[1], (self.io[i],))

    def _enter_stage(self, step: int, stage) -> None:
        if stage.is_work:
            for lane in self.config.workspace_lanes:
                self._append(self.unitaries[stage.index, lane], (self.lanes[lane],))
        elif stage.kind == "output":
            self._write_inputs(step, self.unwrite)
            self._stage_barrier()

    def step(self, step: int) -> None:
        config, lanes, per = self.config, self.lanes, self.flags_per_neuron
        self._write_inputs(step, self.write, marked=True)
        self._stage_barrier()
        current = None
        for spec, gates in self.neurons:
            if spec.stage != current:
                if current is not None:
                    self._stage_barrier()
                current = spec.stage
                self._enter_stage(step, spec.stage)
            first = (step * config.num_neurons + spec.index) * per
            flags = self.flag[first : first + per]
            emit_neuron(self.circuit, gates, self.mode, config.order, lanes, lanes[spec.target], self.anc, flags)
            if self.markers is not None:
                for lane in lanes:
                    self._append(self.markers[0], (lane,))
        self._stage_barrier()
        num_in = config.input_width
        for i in range(num_in):
            self._append(self.measure, (self.io[i],), (self.out[step * num_in + i],))
        for i in range(num_in):
            self._append(self.reset, (self.io[i],))


def qrnn_cell(config: QRNNConfig, *, name: str = "QRNNCell", **options) -> QuantumCircuit:
    """One QRNN cell step: :func:`qrnn_sequence` with ``length=1``; every keyword option of
    :func:`qrnn_sequence` (``weights``, ``inputs``, ``insert_barriers``, ``neuron_mode``,
    ``synthesis``) is forwarded."""
    return qrnn_sequence(config, 1, name=name, **options)
