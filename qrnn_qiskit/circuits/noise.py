"""The engine's noise model at the gate level, and derived from a backend.

:func:`aer_noise_model` attaches the channels of a :class:`~qrnn_qiskit.core.noise.NoiseSpec` to
the identity gates that ``qrnn_sequence(..., noise_markers=True)`` places where the engine's noise
acts, and its readout errors to every measurement, so Aer runs the engine's meaning on the
gate-level circuit.

:func:`noise_from_backend` reads a backend's reported errors and durations (its ``Target``) and
one cell step compiled for it, and turns them into a :class:`NoiseSpec`: per neuron, the
probability that some gate of it fails is spread over the lanes as depolarizing channels, its
duration sets the amplitude and phase damping through ``T1`` and ``T2``, the readout error is the
measurements', and an input write's depolarizing is twice its single-qubit gate error (the
average infidelity of a depolarizing channel is half its parameter). The spec records what it
read, in :attr:`~qrnn_qiskit.core.noise.NoiseSpec.source`.
"""

from __future__ import annotations

import math
import statistics

from qiskit import QuantumCircuit
from qiskit_aer.noise import (
    NoiseModel,
    ReadoutError,
    amplitude_damping_error,
    depolarizing_error,
    phase_damping_error,
)

from qrnn_qiskit.circuits.cell import NEURON_NOISE, WRITE_NOISE, qrnn_cell
from qrnn_qiskit.circuits.targets import resolve_target, transpile_report
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.noise import NoiseSpec, parse_noise

__all__ = ["aer_noise_model", "is_backend_name", "noise_from_backend", "resolve_noise"]

_CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "box"}


def is_backend_name(text: str) -> bool:
    """Whether ``text`` names a backend to read noise from (``fake_<name>``, ``ibm_<name>``)."""
    return text.strip().lower().startswith(("fake_", "ibm_"))


def resolve_noise(noise: str | NoiseSpec | None, config: QRNNConfig, *,
                  neuron_mode: str | NeuronMode = "postselect") -> NoiseSpec | None:
    """The :class:`NoiseSpec` a spelling means for ``config``: ``None``/``none`` no noise, rates
    (``neuron=0.01,readout=0.02``), or a backend (``fake_torino``) read by :func:`noise_from_backend`.

    Raises:
        ValueError: for a spelling that is none of these, naming what is expected.
    """
    if noise is None or isinstance(noise, NoiseSpec):
        return None if noise is None or noise.is_zero else noise
    if not isinstance(noise, str):
        raise ValueError(f"noise must be none, rates or a backend name (fake_<name>), got {type(noise).__name__}.")
    if is_backend_name(noise):
        return noise_from_backend(noise.strip(), config, neuron_mode=neuron_mode)
    spec = parse_noise(noise)
    return None if spec.is_zero else spec


def aer_noise_model(noise: NoiseSpec) -> NoiseModel:
    """A ``NoiseModel`` with the spec's channels on the circuits' noise markers (every qubit) and
    its readout errors on every measurement."""
    model = NoiseModel()
    lane = None
    for rate, make in ((noise.neuron, lambda p: depolarizing_error(p, 1)), (noise.damping, amplitude_damping_error),
                       (noise.dephasing, phase_damping_error)):
        if rate:
            lane = make(rate) if lane is None else lane.compose(make(rate))  # in this order, as the engine
    if lane is not None:
        model.add_all_qubit_quantum_error(lane, [NEURON_NOISE])
    if noise.write:
        model.add_all_qubit_quantum_error(depolarizing_error(noise.write, 1), [WRITE_NOISE])
    if noise.readout0 or noise.readout1:
        e0, e1 = noise.readout
        model.add_all_qubit_readout_error(ReadoutError([[1 - e0, e0], [e1, 1 - e1]]))
    return model


def noise_from_backend(backend: str | object, config: QRNNConfig, *, neuron_mode: str | NeuronMode = "postselect",
                       optimization_level: int = 1, seed: int | None = 7) -> NoiseSpec:
    """The :class:`NoiseSpec` a backend's reported errors and durations give for ``config``'s neurons.

    Args:
        backend: ``fake_<name>`` or a backend object with a ``Target``.
        config: the model; one cell step of it is compiled for the backend.
        neuron_mode: the neurons' mode (their gates).
        optimization_level, seed: of the compilation.

    Raises:
        ValueError: for a target that is not a device (no errors to read).
    """
    resolved = resolve_target(backend)
    if not resolved.is_device:
        raise ValueError(f"noise comes from a device's reported errors; {resolved.name!r} is not a device.")
    step = qrnn_cell(config, neuron_mode=NeuronMode.parse(neuron_mode))
    report = transpile_report(step, resolved.backend, optimization_level=optimization_level, seed=seed, layout="auto",
                              keep_circuit=True)
    compiled = report["circuit"]
    target = resolved.backend.target
    log_ok, single = _gate_log_success(compiled, target)
    per_neuron_fail = 1.0 - math.exp(log_ok / config.num_neurons)
    lanes = config.num_lanes
    neuron = 1.0 - (1.0 - per_neuron_fail) ** (1.0 / lanes)
    duration = report["duration_seconds"] / config.num_neurons
    t1, t2 = _median_times(target, report.get("layout") or range(lanes))
    damping = 1.0 - math.exp(-duration / t1) if t1 else 0.0
    t_phi = 1.0 / max(1.0 / t2 - 0.5 / t1, 1e-30) if t1 and t2 else None
    dephasing = 1.0 - math.exp(-2.0 * duration / t_phi) if t_phi else 0.0
    readout = _median_error(target, "measure")
    write = min(2.0 * statistics.median(single), 0.75) if single else 0.0
    source = (f"{resolved.name}: {report['two_qubit_gates_per_step'] / config.num_neurons:.0f} two-qubit gates and "
              f"{duration * 1e6:.2f} us a neuron (one cell step compiled at optimization level {optimization_level}), "
              f"failure {per_neuron_fail:.3g} a neuron from its gates' reported errors, T1 {t1 * 1e6:.0f} us, "
              f"T2 {t2 * 1e6:.0f} us, readout error {readout:.3g} (medians over the layout)")
    return NoiseSpec(neuron=min(neuron, 0.999), write=write, damping=damping, dephasing=min(dephasing, 0.999),
                     readout0=min(readout, 0.49), readout1=min(readout, 0.49), source=source)


def _gate_log_success(circuit: QuantumCircuit, target) -> tuple[float, list[float]]:
    """``sum log(1 - error)`` over the compiled gates (measurements and resets are the readout's),
    and the errors of the single-qubit gates met."""
    index = {q: i for i, q in enumerate(circuit.qubits)}
    total, single = 0.0, []

    def visit(circ: QuantumCircuit, mapping: dict) -> None:
        nonlocal total
        for inst in circ.data:
            op = inst.operation
            if op.name in _CONTROL_FLOW:
                for block in op.blocks:
                    visit(block, {b: mapping[q] for b, q in zip(block.qubits, inst.qubits)})
                continue
            if op.name in ("barrier", "delay", "measure", "reset") or op.name not in target.operation_names:
                continue
            props = target[op.name].get(tuple(mapping[q] for q in inst.qubits))
            if props is not None and props.error is not None:
                total += math.log1p(-min(props.error, 1 - 1e-15))
                if op.num_qubits == 1 and props.error > 0:
                    single.append(props.error)

    visit(circuit, index)
    return total, single


def _median_times(target, qubits) -> tuple[float, float]:
    props = [target.qubit_properties[q] for q in qubits] if target.qubit_properties else []
    t1 = [p.t1 for p in props if p is not None and p.t1]
    t2 = [p.t2 for p in props if p is not None and p.t2]
    return (statistics.median(t1) if t1 else 0.0), (statistics.median(t2) if t2 else 0.0)


def _median_error(target, name: str) -> float:
    if name not in target.operation_names:
        return 0.0
    errors = [p.error for p in target[name].values() if p is not None and p.error is not None]
    return statistics.median(errors) if errors else 0.0
