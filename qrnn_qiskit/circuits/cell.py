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
given by :func:`qrnn_qiskit.circuits.rus.acceptance_mask`.

Parameters: ``weights`` (default ``ParameterVector("w", P)``) in the layout documented in
:mod:`qrnn_qiskit.config`; ``inputs`` (default ``ParameterVector("x", T*I)``) with ``x[t*I + i]`` the
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
from qiskit.circuit.library import RYGate, XGate

from ..config import QRNNConfig
from .neuron import _emit_neuron, _NeuronGates, neuron_program
from .rus import emit_rus_neuron, rus_flags_per_neuron

__all__ = ["qrnn_cell", "qrnn_sequence", "weight_parameters", "input_parameters"]

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
    neuron_mode: str = "postselect",
    retries: int = 1,
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
        neuron_mode: ``"postselect"`` (each ancilla measured and reset; failing shots are discarded
            afterwards) or ``"rus"`` (a failed ancilla triggers the neuron's correction and a retry,
            ``retries`` times; see :mod:`qrnn_qiskit.circuits.rus`).
        retries: retries per block in ``rus`` mode.
        synthesis: how a neuron's parameter block is written (all keep symbolic weights):
            ``"mc"``, one (multi-)controlled RY per subset; ``"multiplexer"``, a Gray-code
            uniformly controlled RY; ``"phase-polynomial"``, a CNOT-phase network; ``"auto"``,
            the one with the fewest CNOTs per neuron shape (see
            :mod:`qrnn_qiskit.circuits.synthesis`). ``"ucgate"`` writes each block as one
            ``UCGate`` (numeric weights only; native in Aer).
        name: circuit name.

    Returns:
        A circuit on the registers ``io``, ``ws``, ``anc`` with classical registers ``out`` and
        ``flag``; ``circuit.metadata["qrnn"]`` records the configuration and length.

    Raises:
        ValueError: for a non-positive length, wrong weight or input counts, or input bits that are
            not 0/1.
    """
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
    numeric_inputs = isinstance(inputs, np.ndarray)
    if numeric_inputs and not np.all((inputs == 0) | (inputs == 1)):
        bad = sorted(set(inputs[(inputs != 0) & (inputs != 1)].tolist()))[:5]
        raise ValueError(f"Input bits must be 0 or 1, got {bad}.")

    io = QuantumRegister(num_in, "io")
    ws = QuantumRegister(config.workspace, "ws")
    anc = QuantumRegister(config.order, "anc")
    if neuron_mode not in ("postselect", "rus"):
        raise ValueError(f"neuron_mode must be 'postselect' or 'rus', got {neuron_mode!r}.")
    if neuron_mode == "rus" and (not isinstance(retries, int) or retries < 1):
        raise ValueError(f"rus mode needs retries >= 1, got {retries!r}.")
    flags_per_neuron = 2**config.order - 1 if neuron_mode == "postselect" else rus_flags_per_neuron(config.order, retries)
    flags_per_step = config.num_neurons * flags_per_neuron
    out = ClassicalRegister(length * num_in, "out")
    flag = ClassicalRegister(length * flags_per_step, "flag")
    circuit = QuantumCircuit(io, ws, anc, out, flag, name=name)
    mode_label = neuron_mode if neuron_mode == "postselect" else f"rus:{retries}"
    circuit.metadata = {"qrnn": {**config.to_dict(), "length": length, "neuron_mode": mode_label}}

    lanes = [*io, *ws]
    ancillas = list(anc)
    program = neuron_program(config.order)
    neurons = [
        (
            spec,
            _NeuronGates(
                spec.subsets,
                list(weights[spec.weight_slice]),
                weights[spec.bias_index],
                config.bias,
                synthesis=synthesis,
                sources=spec.sources,
            ),
        )
        for spec in config.neurons
    ]
    unitaries = {
        (s, lane): RYGate(weights[config.unitary_index(s, lane)])
        for s in range(config.stages)
        for lane in config.workspace_lanes
    }
    if numeric_inputs:
        write = unwrite = None
    else:
        write = [RYGate(math.pi * x) for x in inputs]
        unwrite = [RYGate(-math.pi * x) for x in inputs]
    x_gate, measure, reset = XGate(), Measure(), Reset()
    append = circuit._append
    barrier = Barrier(circuit.num_qubits)

    def stage_barrier() -> None:
        if insert_barriers:
            append(CircuitInstruction(barrier, tuple(circuit.qubits), ()))

    def write_inputs(step: int, gates: list | None) -> None:
        for i in range(num_in):
            k = step * num_in + i
            if gates is None:
                if inputs[k] == 1:
                    append(CircuitInstruction(x_gate, (io[i],), ()))
            else:
                append(CircuitInstruction(gates[k], (io[i],), ()))

    for step in range(length):
        write_inputs(step, write)
        stage_barrier()
        current_stage = None
        for spec, gates in neurons:
            if spec.stage != current_stage:
                if current_stage is not None:
                    stage_barrier()
                current_stage = spec.stage
                if spec.stage.startswith("work"):
                    s = int(spec.stage[4:])
                    for lane in config.workspace_lanes:
                        append(CircuitInstruction(unitaries[s, lane], (lanes[lane],), ()))
                elif spec.stage == "output":
                    write_inputs(step, unwrite)
                    stage_barrier()
            first = (step * config.num_neurons + spec.index) * flags_per_neuron
            neuron_flags = flag[first : first + flags_per_neuron]
            if neuron_mode == "rus":
                emit_rus_neuron(circuit, gates, config.order, retries, lanes, lanes[spec.target], ancillas, neuron_flags)
            else:
                _emit_neuron(circuit, gates, program, lanes, lanes[spec.target], ancillas, neuron_flags)
        stage_barrier()
        for i in range(num_in):
            append(CircuitInstruction(measure, (io[i],), (out[step * num_in + i],)))
        for i in range(num_in):
            append(CircuitInstruction(reset, (io[i],), ()))
    return circuit


def qrnn_cell(
    config: QRNNConfig,
    *,
    weights: Sequence[ParameterLike] | np.ndarray | None = None,
    inputs: Sequence[ParameterLike] | np.ndarray | None = None,
    insert_barriers: bool = False,
    name: str = "QRNNCell",
) -> QuantumCircuit:
    """One QRNN cell step: :func:`qrnn_sequence` with ``length=1``."""
    return qrnn_sequence(
        config, 1, weights=weights, inputs=inputs, insert_barriers=insert_barriers, name=name
    )
