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
    targets: tuple = (),
    optimization_level: int = 1,
    output: str | os.PathLike | None = None,
    fmt: str = "qasm3",
    synthesis: str = "auto",
    layout: str = "auto",
    compare_synthesis: bool = True,
) -> BuildResult:
    """Build, report and optionally export a QRNN.

    Args:
        config: the model.
        parameters: bound weights (from a checkpoint); symbolic ``w`` if omitted.
        length: cell steps; defaults to the sample's steps, else 1.
        sample: ``(inputs, targets, scored)`` of one sequence in engine form (``T`` steps each) to
            bind the input bits and compute the expected acceptance.
        neuron_mode: ``postselect`` or ``rus[:R]``.
        targets: compilation targets for transpiled figures (``generic``, ``fake_<name>``, or backend
            objects such as a live ``IBMBackend``).
        optimization_level: preset pass manager level.
        output: OpenQASM file to write.
        fmt: ``qasm3`` or ``qasm2``.
        synthesis: parameter-block strategy (``mc``, ``multiplexer``, ``phase-polynomial``,
            ``auto``); see :mod:`qrnn_qiskit.circuits.synthesis`.
        layout: initial layout on device targets (``auto``, ``default``, ``compact``).
        compare_synthesis: add ``report["synthesis"]["compare"]``: 2-qubit gates per step of every
            strategy, on the generic basis and on each target (default layout there).

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
    from .circuits.synthesis import STRATEGIES, choose_strategy, strategy_cnot_counts

    choose_strategy(synthesis, 1, 1)  # checks the name before anything is built
    options = {"weights": parameters, "neuron_mode": mode, "retries": retries, "synthesis": synthesis}
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
    shapes = sorted({(len(spec.sources), config.degree) for spec in config.neurons})
    report["synthesis"] = {
        "requested": synthesis,
        "neuron_shapes": [
            {
                "sources": n,
                "degree": d,
                "neurons": sum(1 for spec in config.neurons if len(spec.sources) == n),
                "chosen": choose_strategy(synthesis, n, d),
                "block_cnots": strategy_cnot_counts(n, d),
            }
            for n, d in shapes
        ],
    }
    report["targets"] = [
        transpile_report(step, target, length=length, optimization_level=optimization_level, layout=layout)
        for target in targets
    ]
    if compare_synthesis:
        compare = {}
        for strategy in STRATEGIES[:-1]:
            one = qrnn_sequence(config, 1, **{**options, "synthesis": strategy})
            compare[strategy] = {}
            for target in ("generic", *targets):
                figures = transpile_report(one, target, optimization_level=optimization_level, layout="default")
                compare[strategy][figures["target"]] = figures["two_qubit_gates_per_step"]
        report["synthesis"]["compare"] = {
            "two_qubit_gates_per_step": compare,
            "note": "one step transpiled per strategy; device targets with the default layout",
        }
    if output is not None:
        export_qasm(circuit, output, fmt=fmt)
        report["output"] = {"path": str(Path(output)), "format": fmt}
    return BuildResult(config, circuit, step, report)
