"""``qrnn build``: a model (options or checkpoint) to circuits, reports and OpenQASM.

:func:`build` takes the command's parameters (a checkpoint or model sizes, a dataset sample to
bind, targets, export); :func:`build_circuits` is the same for a :class:`QRNNConfig` in hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.synthesis import SYMBOLIC_STRATEGIES, choose_strategy, strategy_cnot_counts
from qrnn_qiskit.circuits.targets import transpile_report, two_qubit_gates
from qrnn_qiskit.circuits.unrolled import UnrolledSequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.amplified import neuron_failure_bound
from qrnn_qiskit.engine.memory import check_memory, density_bytes
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.models.registry import is_qrnn
from qrnn_qiskit.runners.ibm import connect, resolve_backend
from qrnn_qiskit.workflows.evaluate import checkpoint_dataset

__all__ = ["BuildResult", "build", "build_circuits", "format_report"]


logger = logging.getLogger("qrnn_qiskit")

@dataclass
class BuildResult:
    """The built sequence (its steps; the whole circuit is built when :attr:`circuit` is first
    read), the circuit of one step (what target reports transpile; ``None`` without targets) and
    the report."""

    config: QRNNConfig
    sequence: UnrolledSequence
    step_circuit: QuantumCircuit | None
    report: dict = field(default_factory=dict)

    @property
    def circuit(self) -> QuantumCircuit:
        """The whole unrolled circuit (built on first use: seconds for hundreds of steps)."""
        return self.sequence.circuit


def build(
    checkpoint: str | os.PathLike | None = None,
    *,
    input_width: int = 2, workspace: int = 3, stages: int = 2, order: int = 2, degree: int = 2,
    length: int | None = None,
    dataset: str | None = None, sample: int | None = None, split: str = "test",
    data_dir: str | os.PathLike | None = None,
    neuron_mode: str | NeuronMode = "postselect",
    targets: tuple = (),
    optimization_level: int = 1,
    synthesis: str = "auto",
    layout: str = "auto",
    compare: bool = True,
    output: str | os.PathLike | None = None,
    fmt: str = "qasm3",
    token: str | None = None,
    instance: str | None = None,
    pass_manager=None,
) -> BuildResult:
    """Build a QRNN as Qiskit circuits, report them (logical and per target), export OpenQASM.

    The model is the ``checkpoint``'s (weights bound) or, without one, the sizes given (weights
    symbolic). ``sample`` binds the input bits of sequence ``sample`` of ``split`` of ``dataset``
    and adds the exact engine's expected acceptance; with a checkpoint, ``dataset``, ``data_dir``
    and the sequence length default to those it was trained on. ``targets`` are ``generic``, ``fake_<name>``,
    ``ibm_<name>`` (resolved with ``token``/``instance``, see :func:`qrnn_qiskit.runners.ibm.connect`),
    backend objects (``BackendV2``) or ``qiskit.transpiler.Target``s; ``pass_manager`` compiles for
    them instead of the presets. Other parameters as in :func:`build_circuits`.

    Raises:
        ValueError: for inconsistent options (dataset without sample, a sample out of range, a
            dataset of another token width, a non-positive length, unknown modes or targets).
        CheckpointError, DatasetError, CredentialError: for unreadable inputs or accounts.
    """
    _check_build_options(checkpoint, dataset, sample, length)
    if checkpoint is not None:
        ck = load_checkpoint(checkpoint)
        config, parameters = ck.config, ck.parameters
        if not is_qrnn(config):
            raise ValueError(f"{checkpoint} holds a classical {config.kind} baseline, which has no quantum circuit to build.")
    else:
        config = QRNNConfig(input_width=input_width, workspace=workspace, stages=stages, order=order, degree=degree)
        parameters = None
    bound = None
    if sample is not None:  # a checkpoint's own dataset, data folder and trained length unless told otherwise
        ds = checkpoint_dataset(ck, checkpoint, dataset, data_dir) if checkpoint is not None else \
            get_dataset(dataset, data_dir=data_dir)
        bound = _bound_sample(config, ds, sample, split)
    if any(isinstance(t, str) and t.startswith("ibm_") for t in targets):
        service = connect(token, instance)[0]
        targets = tuple(resolve_backend(t, service) if isinstance(t, str) and t.startswith("ibm_") else t for t in targets)
    return build_circuits(
        config, parameters=parameters, length=length, sample=bound, neuron_mode=neuron_mode, targets=tuple(targets),
        optimization_level=optimization_level, output=output, fmt=fmt, synthesis=synthesis, layout=layout,
        compare_synthesis=compare, pass_manager=pass_manager,
    )


def _check_build_options(checkpoint, dataset, sample, length) -> None:
    if dataset is not None and sample is None:
        raise ValueError("dataset binds one sequence's inputs: give sample (--sample) too.")
    if sample is not None and dataset is None and checkpoint is None:
        raise ValueError("sample needs the dataset it indexes: give dataset (--dataset), or a checkpoint that was "
                         "trained on one.")
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1 cell steps, got {length}.")


def _bound_sample(config: QRNNConfig, ds, sample: int, split: str) -> tuple:
    """``(inputs, targets, scored)`` of sequence ``sample`` of ``split`` of dataset ``ds`` in engine form."""
    if ds.input_width != config.input_width:
        raise ValueError(
            f"The dataset {ds.name} has {ds.input_width}-bit tokens but the model has input_width={config.input_width}."
        )
    inputs, expected = ds.split(split).engine_arrays()
    if not 0 <= sample < inputs.shape[0]:
        raise ValueError(f"sample must be in [0, {inputs.shape[0]}) for the {split} split, got {sample}.")
    return inputs[sample], expected[sample], ds.scored()


def build_circuits(
    config: QRNNConfig,
    *,
    parameters: np.ndarray | None = None,
    length: int | None = None,
    sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    neuron_mode: str | NeuronMode = "postselect",
    targets: tuple = (),
    optimization_level: int = 1,
    output: str | os.PathLike | None = None,
    fmt: str = "qasm3",
    synthesis: str = "auto",
    layout: str = "auto",
    compare_synthesis: bool = True,
    pass_manager=None,
) -> BuildResult:
    """Build, report and optionally export a QRNN.

    Args:
        config: the model.
        parameters: bound weights (from a checkpoint); symbolic ``w`` if omitted.
        length: cell steps; defaults to the sample's steps, else 1.
        sample: ``(inputs, targets, scored)`` of one sequence in engine form (``T`` steps each) to
            bind the input bits and compute the expected acceptance.
        neuron_mode: ``postselect``, ``rus[:R]`` or ``amplify[:L]`` (the report then gives the
            schedule's failure bound per level and the neuron's worst case over all angles).
        targets: compilation targets for transpiled figures (``generic``, ``fake_<name>``, backend
            objects such as a live ``IBMBackend`` or any ``BackendV2``, or a ``qiskit.transpiler.Target``).
        optimization_level: preset pass manager level.
        output: OpenQASM file to write.
        fmt: ``qasm3`` or ``qasm2``.
        synthesis: parameter-block strategy (see :mod:`qrnn_qiskit.circuits.synthesis`).
        layout: initial layout on device targets (``auto``, ``default``, ``compact``).
        compare_synthesis: add ``report["synthesis"]["compare"]``: 2-qubit gates per step of every
            symbolic strategy, on the generic basis and on each target (default layout there).
        pass_manager: a ``PassManager`` to compile with instead of the presets, on every target.

    Raises:
        ValueError: for inconsistent options (a length that does not match the sample, an
            unknown mode, synthesis or target).
    """
    mode = NeuronMode.parse(neuron_mode)
    length, bits = _length_and_bits(config, length, sample)
    _refuse_early(config, synthesis, sample, length)
    options = {"weights": parameters, "neuron_mode": mode, "synthesis": synthesis}
    with _phase(f"building the {length}-step circuit's cell step ({config.num_qubits} qubits)"):
        sequence, symbolic = _sequence_and_step(config, length, bits, options, bool(targets) or compare_synthesis)
    step = symbolic if targets else None
    with _phase("logical figures" + (" and the exact acceptance" if sample is not None else "")):
        report = _logical(config, sequence, mode, parameters, sample, synthesis)
    report["targets"] = [_target_report(step, target, length, optimization_level, layout, pass_manager)
                         for target in targets]
    if compare_synthesis:
        with _phase("comparing the synthesis strategies"):
            report["synthesis"]["compare"] = _compare_strategies(config, options, targets, optimization_level, symbolic)
    if output is not None:
        report["output"] = _export(sequence, output, fmt)
    return BuildResult(config, sequence, step, report)


def _sequence_and_step(config: QRNNConfig, length: int, bits, options: dict, step_needed: bool):
    """The sequence held as its steps, and one step with symbolic inputs for the targets and the
    comparison: the sequence's own when its inputs are symbolic, else built when needed (None if not)."""
    sequence = UnrolledSequence(config, length, inputs=bits, **options)
    if bits is None:
        return sequence, sequence.step_circuit(0)
    return sequence, qrnn_sequence(config, 1, **options) if step_needed else None


def _refuse_early(config: QRNNConfig, synthesis: str, sample, length: int) -> None:
    """What can be refused before anything is built: the strategy's name, and the acceptance's engine run."""
    choose_strategy(synthesis, 1, 1)
    if sample is not None:
        check_memory(config, 1, length, gradient=False, path="cpu", options="the model (--input-width, --workspace)")


def _export(sequence: UnrolledSequence, output, fmt: str) -> dict:
    with _phase(f"writing {fmt} to {output}"):
        sequence.export(output, fmt=fmt)
    return {"path": str(Path(output)), "format": fmt}


def _target_report(step, target, length, optimization_level, layout, pass_manager) -> dict:
    with _phase(f"transpiling one step for {getattr(target, 'name', target)}"):
        return transpile_report(step, target, length=length, optimization_level=optimization_level, layout=layout,
                                pass_manager=pass_manager)


@contextlib.contextmanager
def _phase(what: str):
    """A progress line on the package's logger when a phase of the build starts, and its time when
    it took a second or more (``qrnn build`` prints them on standard error)."""
    logger.info("build: %s ...", what)
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    if seconds >= 1.0:
        logger.info("build: %s took %.1f s", what, seconds)


def _logical(config: QRNNConfig, sequence: UnrolledSequence, mode: NeuronMode, parameters, sample,
             synthesis: str) -> dict:
    """The report's target-free part: model, logical figures, amplification, acceptance, synthesis."""
    report = {"model": config.to_dict(), "num_parameters": config.num_parameters,
              "length": sequence.length, "neuron_mode": str(mode)}
    if mode.is_amplify:
        report["amplification"] = _amplification_report(config, mode)
    report["logical"] = sequence.logical_report()
    lanes = config.num_lanes
    report["density_path"] = {"numbers_per_sequence": 4**lanes,
                              "mib_per_sequence": density_bytes(lanes, 1, mode.is_amplify) / 2**20}
    if parameters is not None and sample is not None:
        inputs, expected = np.asarray(sample[0]), np.asarray(sample[1])
        report["expected_acceptance"] = _expected_acceptance(config, parameters, inputs, expected, mode)
    report["synthesis"] = _synthesis_report(config, synthesis)
    return report


def _length_and_bits(config: QRNNConfig, length: int | None, sample) -> tuple[int, np.ndarray | None]:
    """The number of steps to build and the sample's input bits (``None``: symbolic inputs)."""
    if sample is None:
        return (1 if length is None else length), None
    inputs = np.asarray(sample[0])
    if length is not None and length != inputs.shape[0]:
        raise ValueError(
            f"length {length} does not match the sample, which has {inputs.shape[0]} steps; "
            "omit length to build every step of the sample."
        )
    return inputs.shape[0], config.token_to_bits(inputs).reshape(-1).astype(float)


def _amplification_report(config: QRNNConfig, mode: NeuronMode) -> dict:
    """The fixed-point schedule's figures for ``amplify:L`` neurons of ``config.order``."""
    schedule = mode.schedule
    return {
        "uses_per_level": schedule.uses,
        "levels": config.order,
        "attempts_per_neuron": (2 * schedule.uses) ** config.order // 2,
        "parameter_blocks_per_neuron": (2 * schedule.uses) ** config.order,
        "delta": schedule.delta,
        "failure_bound_per_level": schedule.delta**2,
        "neuron_failure_worst": neuron_failure_bound(config.order, schedule.uses),
        "note": ("failure_bound_per_level: 1 - P_L(p) for an attempt with p >= 1/2 (exact for the innermost level); "
                 "neuron_failure_worst: the largest probability that a neuron's ancillas do not all read 0, over "
                 "2,049 angles and every target state (exact engine)"),
    }


def _expected_acceptance(config, parameters, inputs, expected, mode: NeuronMode) -> dict:
    """The exact engine's acceptance of one bound sequence (logs, and geometric means per step)."""
    meaning = mode.exact_meaning
    result = ExactEngine(config, neuron_mode=meaning).simulate(parameters, inputs[None], expected[None])
    ancillas = np.log10(result.neuron_acceptance[0])
    joint = ancillas + np.log10(result.outcome_probability[0])
    return {
        "computed_for": str(meaning) + ("" if not mode.is_rus else " (a lower bound for rus)"),
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


def _synthesis_report(config: QRNNConfig, synthesis: str) -> dict:
    """The strategy chosen for each neuron shape, with every symbolic strategy's CNOTs per block."""
    shapes = sorted({(len(spec.sources), config.degree) for spec in config.neurons})
    return {
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


def _compare_strategies(config: QRNNConfig, options: dict, targets, optimization_level: int,
                        built: QuantumCircuit) -> dict:
    """2-qubit gates of one step per symbolic strategy, generic basis and each target (``built``:
    the step already built with symbolic inputs, reused for the strategy it uses throughout)."""
    used = {choose_strategy(options["synthesis"], len(spec.sources), config.degree) for spec in config.neurons}
    compare: dict[str, dict] = {}
    for strategy in SYMBOLIC_STRATEGIES:
        one = built if used == {strategy} else \
            qrnn_sequence(config, 1, **{**options, "synthesis": strategy})
        compare[strategy] = dict(two_qubit_gates(one, target, optimization_level=optimization_level)
                                 for target in ("generic", *targets))
    return {
        "two_qubit_gates_per_step": compare,
        "note": "one step transpiled per strategy; device targets with the default layout",
    }


def format_report(report: dict) -> str:
    """The report of :func:`build` as text, one figure a line."""
    m = report["model"]
    logical = report["logical"]
    lines = [
        f"QRNN I={m['input_width']} W={m['workspace']} S={m['stages']} order={m['order']} "
        f"degree={m['degree']}, {report['length']} step(s), neuron mode {report['neuron_mode']}",
        f"  model parameters   {report['num_parameters']}",
        f"  qubits             {logical['qubits']}",
        f"  clbits             {logical['clbits']}",
        f"  depth              {logical['depth']}",
        f"  measurements       {logical['measurements']}",
        f"  resets             {logical['resets']}",
        f"  if_else blocks     {logical['if_else_blocks']}",
        f"  circuit parameters {logical['parameters']}",
        f"  density path       4**(I+W) = {report['density_path']['numbers_per_sequence']} numbers a sequence "
        f"({report['density_path']['mib_per_sequence']:.3g} MiB): measured steps, keep and rus neurons, noise",
        "  operations         " + ", ".join(f"{k}: {v}" for k, v in logical["operations"].items()),
        "  controlled RY by controls "
        + ", ".join(f"{k}: {v}" for k, v in logical["controlled_rotations"].items()),
    ]
    if "expected_acceptance" in report:
        acc = report["expected_acceptance"]
        lines.append(f"  expected acceptance (exact engine, {acc['computed_for']}):")
        lines.append(f"    ancillas           10^{acc['log10_ancillas']:.1f}  ({acc['ancillas_per_step']:.3g} per step)")
        lines.append(f"    with targets       10^{acc['log10_ancillas_and_targets']:.1f}  "
                     f"({acc['ancillas_and_targets_per_step']:.3g} per step)")
    syn = report.get("synthesis")
    if syn:
        lines.append(f"  block synthesis    {syn['requested']}")
        for shape in syn["neuron_shapes"]:
            cnots = ", ".join(f"{k} {v}" for k, v in shape["block_cnots"].items())
            lines.append(f"    {shape['neurons']} neuron(s), {shape['sources']} sources, degree {shape['degree']}: "
                         f"{shape['chosen']} (CNOTs per block: {cnots})")
        if "compare" in syn:
            table = syn["compare"]["two_qubit_gates_per_step"]
            names = list(next(iter(table.values())))
            lines.append("    2-qubit gates per step   " + "".join(f"{n:>16s}" for n in names))
            for strategy, row in table.items():
                lines.append(f"      {strategy:22s} " + "".join(f"{row[n]:>16d}" for n in names))
    for t in report["targets"]:
        lines.append(f"  target {t['target']} (optimization level {t['optimization_level']}, scaled from one step x {t['steps_scaled']})")
        lines.append(f"    2-qubit gates      {t['two_qubit_gates']}  ({t['two_qubit_gates_per_step']} per step)")
        lines.append(f"    depth              {t['depth']}  (2-qubit depth {t['two_qubit_depth']})")
        if "duration_seconds" in t:
            lines.append(f"    duration           {t['duration_seconds']:.4g} s")
            lines.append(f"    success estimate   {t['success_probability_estimate']:.3e} "
                         f"(per step {t['success_probability_estimate_per_step']:.3e})")
            lines.append(f"    layout             {t['layout_strategy']} {t['layout']}")
            lines.append(f"    routing overhead   {t['swap_overhead_two_qubit_gates_per_step']} 2-qubit gates per step "
                         f"(all-to-all {t['two_qubit_gates_per_step_all_to_all']}, "
                         f"default layout {t['two_qubit_gates_per_step_default_layout']})")
    if "output" in report:
        lines.append(f"  wrote {report['output']['format']} to {report['output']['path']}")
    return "\n".join(lines)
