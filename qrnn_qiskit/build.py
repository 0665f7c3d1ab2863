"""``qrnn build``: a model (options or checkpoint) to circuits, reports and OpenQASM."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit

from .circuits import qrnn_sequence
from .circuits.export import export_qasm
from .circuits.report import logical_report
from .circuits.targets import transpile_report
from .config import QRNNConfig
from .engine import ExactEngine

__all__ = ["BuildResult", "build"]


@dataclass
class BuildResult:
    """The built circuit, the circuit of one step (what target reports transpile; ``None``
    without targets) and the report."""

    config: QRNNConfig
    circuit: QuantumCircuit
    step_circuit: QuantumCircuit | None
    report: dict = field(default_factory=dict)


def build(
    config: QRNNConfig,
    *,
    parameters: np.ndarray | None = None,
    length: int | None = None,
    sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    neuron_mode: str = "postselect",
    targets: tuple[str, ...] = (),
    optimization_level: int = 1,
    output: str | os.PathLike | None = None,
    fmt: str = "qasm3",
) -> BuildResult:
    """Build, report and optionally export a QRNN.

    Args:
        config: the model.
        parameters: bound weights (from a checkpoint); symbolic ``w`` if omitted.
        length: cell steps; defaults to the sample's steps, else 1.
        sample: ``(inputs, targets, scored)`` of one sequence in engine form (``T`` steps each) to
            bind the input bits and compute the expected acceptance.
        neuron_mode: ``postselect`` or ``rus[:R]``.
        targets: compilation targets for transpiled figures (``generic``, ``fake_<name>``).
        optimization_level: preset pass manager level.
        output: OpenQASM file to write.
        fmt: ``qasm3`` or ``qasm2``.

    Raises:
        ValueError: for inconsistent options (a length that does not match the sample, an
            unknown mode or target).
    """
    from .circuits.rus import parse_neuron_mode

    mode, retries = parse_neuron_mode(neuron_mode)
    if sample is not None:
        inputs, expected, scored = (np.asarray(a) for a in sample)
        if length is not None and length != inputs.shape[0]:
            raise ValueError(
                f"--length {length} does not match the sample, which has {inputs.shape[0]} steps; "
                "omit --length to build every step of the sample."
            )
        length = inputs.shape[0]
        bits = config.token_to_bits(inputs).reshape(-1).astype(float)
    else:
        bits = None
        length = 1 if length is None else length
    options = {"weights": parameters, "neuron_mode": mode, "retries": retries}
    circuit = qrnn_sequence(config, length, inputs=bits, **options)
    # target reports transpile one step (inputs symbolic) and scale it; build it only for them
    step = qrnn_sequence(config, 1, **options) if targets else None
    report = {"model": config.to_dict(), "num_parameters": config.num_parameters, "length": length}
    report["neuron_mode"] = neuron_mode
    report["logical"] = logical_report(circuit)
    if parameters is not None and sample is not None:
        result = ExactEngine(config).simulate(parameters, inputs[None], expected[None])
        ancillas = np.log10(result.neuron_acceptance[0])
        joint = ancillas + np.log10(result.outcome_probability[0])
        report["expected_acceptance"] = {
            "computed_for": "postselect" + ("" if mode == "postselect" else " (a lower bound for rus)"),
            "log10_ancillas": float(ancillas.sum()),
            "log10_ancillas_and_targets": float(joint.sum()),
            "ancillas_per_step": float(10 ** ancillas.mean()),
            "ancillas_and_targets_per_step": float(10 ** joint.mean()),
            "note": (
                "exact engine on the bound sample: probability that every ancilla flag reads 0 "
                "(io outcomes equal to the targets), and that jointly with every io outcome equal "
                "to its target; per-step figures are geometric means"
            ),
        }
    report["targets"] = [
        transpile_report(step, target, length=length, optimization_level=optimization_level) for target in targets
    ]
    if output is not None:
        export_qasm(circuit, output, fmt=fmt)
        report["output"] = {"path": str(Path(output)), "format": fmt}
    return BuildResult(config, circuit, step, report)
