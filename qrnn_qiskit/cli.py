"""The ``qrnn`` command line. Commands only parse arguments and call the library."""

from __future__ import annotations

import json
import sys

import click

from .config import QRNNConfig

__all__ = ["main"]


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _config_from_options(input_width, workspace, stages, order, degree) -> QRNNConfig:
    try:
        return QRNNConfig(
            input_width=input_width, workspace=workspace, stages=stages, order=order, degree=degree
        )
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
@click.version_option(package_name="qrnn-qiskit")
def main() -> None:
    """Quantum Recurrent Neural Networks (Bausch, NeurIPS 2020) on Qiskit."""


@main.command()
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="bind the weights of a trained model")
@click.option("--input-width", "-I", type=int, default=2, show_default=True, help="io lanes (bits per token)")
@click.option("--workspace", "-W", type=int, default=3, show_default=True, help="workspace lanes")
@click.option("--stages", "-S", type=int, default=1, show_default=True, help="work stages")
@click.option("--order", "-k", type=int, default=2, show_default=True, help="neuron order")
@click.option("--degree", "-d", type=int, default=2, show_default=True, help="neuron degree")
@click.option("--length", "-T", type=int, default=None, help="cell steps to unroll [default: 1, or every step of --sample]")
@click.option("--dataset", help="bind the input bits of one sequence of this dataset")
@click.option("--sample", type=int, help="index of that sequence in --split")
@click.option("--split", type=click.Choice(["train", "validate", "test"]), default="test", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="folder of the reference MNIST csv.gz files")
@click.option("--neuron-mode", default="postselect", show_default=True, help="postselect, or rus[:R] (R retries)")
@click.option("--target", "targets", multiple=True,
              help="generic, fake_<name> (e.g. fake_torino) or ibm_<name> (needs an account); repeatable")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True)
@click.option("--synthesis", type=click.Choice(["auto", "mc", "multiplexer", "phase-polynomial"]), default="auto",
              show_default=True, help="how each neuron's parameter block is synthesised (auto: fewest CNOTs per neuron shape)")
@click.option("--layout", type=click.Choice(["auto", "default", "compact"]), default="auto", show_default=True,
              help="initial layout on device targets (auto: the better of the transpiler's and a compact one)")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="report the 2-qubit gates of every synthesis strategy side by side")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="write OpenQASM here")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["qasm3", "qasm2"]),
    default="qasm3",
    show_default=True,
    help="OpenQASM version of --output",
)
@click.option("--report/--no-report", default=True, show_default=True, help="print the report")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON line")
@click.option("--draw", is_flag=True, help="print a text drawing (small circuits only)")
@click.option("--token", help="IBM Quantum API key for ibm_* targets (default: $QISKIT_IBM_TOKEN, then the saved account)")
@click.option("--instance", help="IBM Quantum instance for ibm_* targets (default: $QISKIT_IBM_INSTANCE)")
def build(checkpoint, input_width, workspace, stages, order, degree, length, dataset, sample, split, data_dir,
          neuron_mode, targets, optimization_level, synthesis, layout, compare, output, fmt, report, as_json, draw,
          token, instance):
    """Build the QRNN as Qiskit circuits, report them (logical and per target), export OpenQASM."""
    from .build import build as build_circuits
    from .exceptions import QRNNError
    from .training import get_dataset, load_checkpoint

    if (dataset is None) != (sample is None):
        raise click.UsageError("--dataset and --sample go together: give both to bind one sequence's inputs.")
    try:
        if checkpoint:
            ck = load_checkpoint(checkpoint)
            config, parameters = ck.config, ck.parameters
        else:
            config, parameters = _config_from_options(input_width, workspace, stages, order, degree), None
        bound = None
        if dataset is not None:
            ds = get_dataset(dataset, data_dir=data_dir)
            if ds.input_width != config.input_width:
                raise click.UsageError(
                    f"--dataset {dataset} has {ds.input_width}-bit tokens but the model has input_width="
                    f"{config.input_width}."
                )
            data = ds.split(split)
            if not 0 <= sample < data.inputs.shape[0]:
                raise click.UsageError(f"--sample must be in [0, {data.inputs.shape[0]}) for the {split} split, got {sample}.")
            inputs, expected = data.engine_arrays()
            bound = (inputs[sample], expected[sample], ds.scored())
        if length is not None and length < 1:
            raise click.BadParameter(f"--length must be >= 1 cell steps, got {length}.", param_hint="--length")
        if any(t.startswith("ibm_") for t in targets):
            from .runners.ibm import connect, resolve_backend

            service = connect(token, instance)[0]
            targets = [resolve_backend(t, service) if t.startswith("ibm_") else t for t in targets]
        result = build_circuits(
            config, parameters=parameters, length=length, sample=bound, neuron_mode=neuron_mode,
            targets=tuple(targets), optimization_level=optimization_level, output=output, fmt=fmt,
            synthesis=synthesis, layout=layout, compare_synthesis=compare,
        )
    except (QRNNError, ValueError, OSError) as exc:
        _fail(str(exc))
    if draw:
        if result.circuit.size() > 2000:
            _fail(f"--draw is for small circuits; this one has {result.circuit.size()} operations.")
        click.echo(result.circuit.draw(output="text", fold=120))
    if as_json:
        click.echo(json.dumps(result.report))
    elif report:
        click.echo(_format_report(result.report))


def _format_report(report: dict) -> str:
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

def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:32s} {value}")


@main.command("datasets")
@click.option("--data-dir", type=click.Path(file_okay=False), help="folder of the reference MNIST csv.gz files")
def datasets_command(data_dir):
    """List the datasets with their input width, sequence length and classes."""
    from .exceptions import DatasetError
    from .optionals import MissingOptionalDependency
    from .training.datasets import DATASETS, FAMILY_EXAMPLES, get_dataset

    click.echo(f"{'name':18s} {'input_width':>11s} {'length':>6s} {'classes':>7s} {'scored':>6s}")
    for family in DATASETS:
        name, note = FAMILY_EXAMPLES.get(family, (family, ""))
        suffix = f"  [{family}: {note}]" if note else ""
        try:
            info = get_dataset(name, data_dir=data_dir).describe()
        except MissingOptionalDependency as exc:
            click.echo(f"{name:18s} ({exc})")
            continue
        except DatasetError:
            files = "the reference csv.gz files" if "idx" not in name else "the MNIST IDX files"
            click.echo(f"{name:18s} (needs --data-dir with {files}){suffix}")
            continue
        click.echo(
            f"{name:18s} {info['input_width']:>11d} {info['sequence_length']:>6d} "
            f"{info['classes']:>7d} {info['scored_steps']:>6d}{suffix}"
        )


@main.command("import-reference")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="checkpoint to write (default FILE stem + .qrnn.npz)")
@click.option("--order", type=int, default=None,
              help="neuron order (default: the .tar's stored arguments or the .npz's sidecar .json, else 2)")
def import_reference(file, output, order):
    """Convert a model trained by the reference PyTorch implementation to a qrnn-qiskit checkpoint.

    FILE is an .npz of its state dict (with an optional sidecar .json of settings), or one of its
    checkpoint .tar files (needs the torch extra; read with weights_only, never unpickled freely).
    """
    from pathlib import Path

    from .exceptions import CheckpointError
    from .optionals import MissingOptionalDependency
    from .training import import_reference, save_checkpoint

    try:
        checkpoint = import_reference(file, order=order)
    except (CheckpointError, MissingOptionalDependency) as exc:
        _fail(str(exc))
    target = Path(output) if output else Path(file).with_suffix(".qrnn.npz")
    save_checkpoint(target, checkpoint)
    cfg = checkpoint.config
    click.echo(
        f"wrote {target}: I={cfg.input_width} W={cfg.workspace} S={cfg.stages} order={cfg.order} "
        f"degree={cfg.degree}, {cfg.num_parameters} parameters"
    )


@main.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--backend", default="exact", show_default=True,
              help="exact; aer (sampled shots of the real circuits); ibm_<name> (IBM Quantum device) or fake_<name> (offline)")
@click.option("--dataset", help="dataset name (default: the checkpoint's)")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="folder of the reference MNIST csv.gz files (default: the one the checkpoint was trained from)")
@click.option("--split", type=click.Choice(["train", "validate", "test"]), default="test", show_default=True)
@click.option("--limit", type=int, help="evaluate only the first N sequences of the split")
@click.option("--shots", type=int, default=1024, show_default=True, help="shots per sequence (aer, ibm_*, fake_*)")
@click.option("--neuron-mode", default="postselect", show_default=True, help="postselect or rus[:R] (aer, ibm_*, fake_*)")
@click.option("--noise", help="fake_<name>: the noise model of a fake backend (aer)")
@click.option("--device", type=click.Choice(["CPU", "GPU"]), default="CPU", show_default=True, help="Aer device")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the sampled measurements")
@click.option("--token", help="IBM Quantum API key (default: $QISKIT_IBM_TOKEN, then the saved account); never printed")
@click.option("--instance", help="IBM Quantum instance CRN or name (default: $QISKIT_IBM_INSTANCE)")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True, help="transpiler level (ibm_*, fake_*)")
@click.option("--layout", type=click.Choice(["auto", "default", "compact"]), default="auto", show_default=True,
              help="initial layout (ibm_*, fake_*)")
@click.option("--dynamical-decoupling", is_flag=True, help="enable dynamical decoupling (not with rus mode)")
@click.option("--twirling", is_flag=True, help="enable gate and measurement twirling")
@click.option("--yes", is_flag=True, help="submit to a real device after the cost is shown")
@click.option("--out", type=click.Path(file_okay=False), help="folder for jobs.json and result.json (ibm_*: default runs/ibm-<backend>-<time>)")
@click.option("--job-id", "job_ids", multiple=True, help="collect these submitted jobs instead of submitting (repeatable, in order)")
@click.option("--jobs", "jobs_dir", type=click.Path(),
              help="collect the jobs recorded in DIR/jobs.json (backend, ids, dataset, split, limit, shots, mode from the record)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line")
def eval_command(checkpoint, backend, dataset, data_dir, split, limit, shots, neuron_mode, noise, device, seed, token,
                 instance, optimization_level, layout, dynamical_decoupling, twirling, yes, out, job_ids, jobs_dir, as_json):
    """Evaluate a checkpoint: loss, sampled accuracy, exact expected accuracy, CER, acceptance."""
    from .exceptions import DatasetError, QRNNError
    from .training import evaluate_exact, get_dataset, load_checkpoint

    rows = None
    if jobs_dir is not None:
        from .runners.ibm import load_job_record

        if job_ids:
            _fail("Give --jobs DIR or --job-id, not both.")
        try:
            record = load_job_record(jobs_dir)
        except QRNNError as exc:
            _fail(str(exc))
        if backend not in ("exact", record.backend):
            _fail(f"{jobs_dir} records jobs on {record.backend}, not --backend {backend}.")
        backend, job_ids, rows = record.backend, tuple(record.job_ids), list(record.rows)
        shots, neuron_mode = record.shots, record.neuron_mode
        dataset = dataset or record.context.get("dataset")
        split = record.context.get("split", split)
        limit = limit if limit is not None else record.context.get("limit")

    ibm = backend.startswith("ibm_") or backend.startswith("fake_")
    if backend not in ("exact", "aer") and not ibm:
        _fail(f"Unknown --backend {backend!r}; expected exact, aer, ibm_<name> (e.g. ibm_torino) or fake_<name> (e.g. fake_torino).")
    if job_ids and not ibm:
        _fail("--job-id collects IBM Quantum jobs; give the --backend they ran on (ibm_<name> or fake_<name>).")
    try:
        ck = load_checkpoint(checkpoint)
        name = dataset or ck.meta.get("dataset")
        if not name:
            raise click.UsageError("The checkpoint does not name its dataset; pass --dataset.")
        trained = ck.meta.get("settings", {})
        stored = data_dir is None and name == trained.get("dataset") and trained.get("data_dir")
        if stored:
            data_dir = trained["data_dir"]  # the folder it was trained from; --data-dir overrides
        try:
            ds = get_dataset(name, data_dir=data_dir, sentence_length=trained.get("sentence_length"))
        except DatasetError as exc:
            if not stored:
                raise
            raise DatasetError(
                f"{str(exc).rstrip('.')}: it is the folder {checkpoint} was trained from; pass --data-dir DIR."
            ) from exc
        if backend == "exact":
            batch = ds.split(split).first(limit) if limit is not None else None
            result = evaluate_exact(ck.config, ck.parameters, ds, split=split, batch=batch, seed=seed)
        elif backend == "aer":
            from .runners.aer import AerRunner, evaluate_shots

            runner = AerRunner(device=device, noise=noise, shots=shots, seed=seed, neuron_mode=neuron_mode)
            result = evaluate_shots(ck.config, ck.parameters, ds, runner, split=split, limit=limit)
            result.update({"backend": "aer", "neuron_mode": neuron_mode, "noise": noise, "device": device})
            _label_expected_acceptance(result, neuron_mode)
        else:
            result = _eval_ibm(ck, ds, backend, split=split, limit=limit, shots=shots, neuron_mode=neuron_mode,
                               seed=seed, token=token, instance=instance, optimization_level=optimization_level,
                               layout=layout, dynamical_decoupling=dynamical_decoupling, twirling=twirling, yes=yes,
                               out=out, job_ids=job_ids, rows=rows, checkpoint=checkpoint)
    except (QRNNError, ValueError) as exc:
        _fail(str(exc))
    result["checkpoint"] = str(checkpoint)
    _emit(result, as_json)


def _label_expected_acceptance(result: dict, neuron_mode: str) -> None:
    if neuron_mode != "postselect":
        result["expected_acceptance_note"] = (
            "exact engine, postselect mode: a lower bound for rus, whose retries accept more shots"
        )


def _eval_ibm(ck, ds, backend, *, split, limit, shots, neuron_mode, seed, token, instance, optimization_level, layout,
              dynamical_decoupling, twirling, yes, out, job_ids, checkpoint, rows=None) -> dict:
    """``qrnn eval --backend ibm_*|fake_*``: cost and report, --yes gate, submit or collect, evaluate."""
    import time
    from pathlib import Path

    from .runners.aer import evaluate_shots
    from .runners.ibm import FetchedShots, IBMRunner, JobRecord, connect, resolve_backend

    live = backend.startswith("ibm_")
    service = connect(token, instance)[0] if live else None
    runner = IBMRunner(
        resolve_backend(backend, service), shots=shots, neuron_mode=neuron_mode, optimization_level=optimization_level,
        layout=layout, dynamical_decoupling=dynamical_decoupling, twirling=twirling, seed=seed, name=backend,
    )
    inputs, _ = ds.split(split).first(limit).engine_arrays()
    prepared = runner.prepare(ck.config, ck.parameters, inputs.shape[1])
    cost = runner.cost(prepared, inputs.shape[0])
    figures = {k: prepared.report[k] for k in (
        "two_qubit_gates", "depth", "two_qubit_depth", "qubits", "layout", "layout_strategy",
        "swap_overhead_two_qubit_gates_per_step", "duration_seconds", "success_probability_estimate")}
    figures["swap_overhead_two_qubit_gates"] = figures.pop("swap_overhead_two_qubit_gates_per_step")
    if not job_ids:
        click.echo(f"cost on {backend}: {cost['circuits']} circuit(s) in {cost['jobs']} job(s) x {shots} shots, "
                   f"about {cost['estimated_qpu_seconds']} QPU seconds ({cost['estimate_basis']})", err=True)
        click.echo(f"compiled for {backend}: {figures['two_qubit_gates']} 2-qubit gates, depth {figures['depth']}, "
                   f"{figures['qubits']} qubits, estimated success {figures['success_probability_estimate']:.3e}", err=True)
        if live and not yes:
            raise click.ClickException(f"Nothing was submitted to {backend}: review the cost above and add --yes to submit.")
    context = {"checkpoint": str(checkpoint), "dataset": ds.name, "split": split, "limit": limit}
    if job_ids:
        record = JobRecord(backend, list(job_ids), rows or [None] * len(job_ids), inputs.shape[1], shots, neuron_mode, context)
        shots_result = runner.collect(ck.config, record, service=service)
    else:
        if out is None and live:
            out = f"runs/ibm-{backend}-{time.strftime('%Y%m%d-%H%M%S')}"
        record = runner.submit(ck.config, ck.parameters, inputs, context=context)
        if out is not None:
            path = runner.save_record(record, out)
            click.echo(f"job ids {record.job_ids} saved in {path}; collect later with --job-id", err=True)
        shots_result = runner.collect(ck.config, record)
    result = evaluate_shots(ck.config, ck.parameters, ds, FetchedShots(shots_result), split=split, limit=limit)
    result.update({"backend": backend, "neuron_mode": neuron_mode, "job_ids": record.job_ids, "cost": cost, **figures})
    _label_expected_acceptance(result, neuron_mode)
    if out is not None:
        from ._io import atomic_write_text

        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out) / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _parse_schedule(value):
    if value is None:
        return None
    try:
        return [[int(step), float(lr)] for step, lr in (item.split(":") for item in value.split(","))]
    except ValueError:
        raise click.BadParameter(f"expected STEP:LR[,STEP:LR...] such as 390:0.002, got {value!r}.") from None


_TRAIN_OPTIONS = [
    click.option("--dataset", default="simple-seq", show_default=True),
    click.option("--data-dir", type=click.Path(file_okay=False), help="folder of the reference MNIST csv.gz files"),
    click.option("--workspace", "-W", type=int, default=3, show_default=True),
    click.option("--stages", "-S", type=int, default=2, show_default=True),
    click.option("--order", type=int, default=2, show_default=True),
    click.option("--degree", type=int, default=2, show_default=True),
    click.option("--sentence-length", type=int, default=20, show_default=True),
    click.option("--batch-size", type=int, default=1, show_default=True, help="per class for classification sets"),
    click.option("--optimizer", type=click.Choice(["adam", "sgd", "rmsprop", "lbfgs"]), default="adam", show_default=True),
    click.option("--learning-rate", type=float, default=0.003, show_default=True),
    click.option("--lr-schedule", callback=lambda ctx, param, value: _parse_schedule(value), default=None,
                 help="later learning rates as STEP:LR[,STEP:LR...]: from STEP completed steps on, use LR"),
    click.option("--weight-decay", type=float, default=0.0, show_default=True),
    click.option("--initial-bias", type=float, default=1.5707963267948966, show_default=True),
    click.option("--initial-bias-spread", type=float, default=0.1, show_default=True),
    click.option("--initial-weights-spread", type=float, default=0.01, show_default=True),
    click.option("--initial-unitaries-spread", type=float, default=0.01, show_default=True),
    click.option("--steps", type=int, default=5000, show_default=True),
    click.option("--seed", type=int, default=82727, show_default=True),
    click.option("--validate-every", type=int, default=10, show_default=True),
    click.option("--validation-size", type=int, default=None,
                 help="validate on a fixed set of N validation sequences (0: the whole split) instead of a "
                      "fresh random batch each time (the reference's way)"),
    click.option("--stop-at-loss", type=float, default=None),
    click.option("--timeout", type=float, default=None, help="seconds"),
]


def _with_train_options(fn):
    for option in reversed(_TRAIN_OPTIONS):
        fn = option(fn)
    return fn


@main.command("train")
@_with_train_options
@click.option("--backend", type=click.Choice(["exact", "aer"]), default="exact", show_default=True,
              help="exact engine, or gradients from Aer shots of the real circuits")
@click.option("--gradient", type=click.Choice(["param-shift", "spsa"]), default="param-shift", show_default=True,
              help="how --backend aer estimates gradients")
@click.option("--shots", type=int, default=1024, show_default=True, help="shots per circuit row (aer)")
@click.option("--device", type=click.Choice(["CPU", "GPU"]), default="CPU", show_default=True, help="Aer device")
@click.option("--out", type=click.Path(file_okay=False), default="runs/qrnn", show_default=True)
@click.option("--tensorboard", is_flag=True, help="also write TensorBoard event files (tensorboard extra)")
@click.option("--test", "run_test", is_flag=True, help="evaluate the best checkpoint on the test split at the end")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line summarising the run")
def train_command(backend, gradient, shots, device, out, tensorboard, run_test, as_json, **options):
    """Train a QRNN (reference settings and loss) on the exact engine or with Aer gradients."""
    from .exceptions import QRNNError
    from .training import evaluate_exact, get_dataset, load_checkpoint
    from .training.trainer import TrainSettings, _model, train

    try:
        settings = TrainSettings(**options, tensorboard=tensorboard, argv=sys.argv[1:])
        settings.validate()
        estimator = None
        if backend == "aer":
            import numpy as np

            from .runners.aer import AerRunner
            from .runners.aer_training import AerGradient

            dataset = get_dataset(settings.dataset, sentence_length=settings.sentence_length, data_dir=settings.data_dir)
            config = _model(settings, dataset.input_width)
            estimator = AerGradient(config, AerRunner(shots=shots, seed=settings.seed, device=device), gradient, seed=settings.seed)
            probe = dataset.batch(settings.batch_size, np.random.default_rng(0))
            inputs, targets = probe.engine_arrays()
            rows = estimator.evaluations_per_step(inputs.shape[1]) * inputs.shape[0]
            seconds = estimator.estimate_seconds(inputs, targets)
            click.echo(
                f"aer {gradient}: {rows} circuit rows x {shots} shots = {rows * shots:,} shots per step, "
                f"about {seconds:.1f} s per step ({seconds * settings.steps / 60:.1f} min for {settings.steps} steps)",
                err=True,
            )
        summary = train(settings, out, gradient=estimator)
        if run_test:
            best = load_checkpoint(summary["checkpoints"]["best"])
            dataset = get_dataset(settings.dataset, sentence_length=settings.sentence_length, data_dir=settings.data_dir)
            test = evaluate_exact(best.config, best.parameters, dataset, split="test", seed=settings.seed)
            summary.update({f"test_{k}": v for k, v in test.items() if k not in ("dataset", "split")})
        summary["backend"] = backend
    except (QRNNError, ValueError) as exc:
        _fail(str(exc))
    _emit(summary, as_json)


@main.command("plot")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="PNG to write (default RUN_DIR/curves.png)")
def plot_command(run_dir, output):
    """Draw a run's loss and error-rate curves to a PNG (plot extra: matplotlib)."""
    from .exceptions import QRNNError
    from .training.plot import plot_run

    try:
        click.echo(f"wrote {plot_run(run_dir, output)}")
    except QRNNError as exc:
        _fail(str(exc))


@main.command("resume")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="run folder (default: the checkpoint's)")
@click.option("--learning-rate", type=float)
@click.option("--batch-size", type=int)
@click.option("--steps", type=int, help="new total number of steps")
@click.option("--timeout", type=float, help="new limit on the run's total seconds (time already spent counts)")
@click.option("--validation-size", type=int,
              help="switch to a fixed validation set of N sequences (0: the whole split); the best loss restarts")
@click.option("--json", "as_json", is_flag=True)
def resume_command(checkpoint, out, learning_rate, batch_size, steps, timeout, validation_size, as_json):
    """Continue a training run exactly from its checkpoint."""
    from .exceptions import QRNNError
    from .training.trainer import resume

    try:
        summary = resume(
            checkpoint, out, learning_rate=learning_rate, batch_size=batch_size, steps=steps, timeout=timeout,
            validation_size=validation_size,
        )
    except (QRNNError, ValueError) as exc:
        _fail(str(exc))
    _emit(summary, as_json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
