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
@click.option("--input-width", "-I", type=int, default=2, show_default=True, help="io lanes (bits per token)")
@click.option("--workspace", "-W", type=int, default=3, show_default=True, help="workspace lanes")
@click.option("--stages", "-S", type=int, default=1, show_default=True, help="work stages")
@click.option("--order", "-k", type=int, default=2, show_default=True, help="neuron order")
@click.option("--degree", "-d", type=int, default=2, show_default=True, help="neuron degree")
@click.option("--length", "-T", type=int, default=1, show_default=True, help="cell steps to unroll")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="write OpenQASM here")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["qasm3", "qasm2"]),
    default="qasm3",
    show_default=True,
    help="OpenQASM version of --output",
)
@click.option("--report/--no-report", default=True, show_default=True, help="print the logical report")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON line")
@click.option("--draw", is_flag=True, help="print a text drawing (small circuits only)")
def build(input_width, workspace, stages, order, degree, length, output, fmt, report, as_json, draw):
    """Build the QRNN as a Qiskit circuit (symbolic weights and inputs), report it, export it."""
    from .circuits import qrnn_sequence
    from .circuits.export import export_qasm
    from .circuits.report import logical_report

    config = _config_from_options(input_width, workspace, stages, order, degree)
    if length < 1:
        raise click.BadParameter(f"--length must be >= 1 cell steps, got {length}.", param_hint="--length")
    circuit = qrnn_sequence(config, length, insert_barriers=draw)
    info = logical_report(circuit)
    info["num_parameters_model"] = config.num_parameters
    if output:
        try:
            export_qasm(circuit, output, fmt=fmt)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        info["output"] = str(output)
        info["format"] = fmt
    if draw:
        if circuit.size() > 2000:
            _fail(f"--draw is for small circuits; this one has {circuit.size()} operations.")
        click.echo(circuit.draw(output="text", fold=120))
    if as_json:
        click.echo(json.dumps(info))
    elif report:
        click.echo(_format_report(config, length, info))


def _format_report(config: QRNNConfig, length: int, info: dict) -> str:
    lines = [
        f"QRNN I={config.input_width} W={config.workspace} S={config.stages} "
        f"order={config.order} degree={config.degree}, {length} step(s)",
        f"  model parameters   {config.num_parameters}",
        f"  qubits             {info['qubits']}",
        f"  clbits             {info['clbits']}",
        f"  depth              {info['depth']}",
        f"  measurements       {info['measurements']}",
        f"  resets             {info['resets']}",
        f"  circuit parameters {info['parameters']}",
        "  operations         " + ", ".join(f"{k}: {v}" for k, v in info["operations"].items()),
        "  controlled RY by controls "
        + ", ".join(f"{k}: {v}" for k, v in info["controlled_rotations"].items()),
    ]
    if "output" in info:
        lines.append(f"  wrote {info['format']} to {info['output']}")
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
    from .training.datasets import DATASETS, get_dataset

    click.echo(f"{'name':14s} {'input_width':>11s} {'length':>6s} {'classes':>7s} {'scored':>6s}")
    for name in DATASETS:
        try:
            info = get_dataset(name, data_dir=data_dir).describe()
        except DatasetError:
            click.echo(f"{name:14s} {'(needs --data-dir with the reference csv.gz files)':>40s}")
            continue
        click.echo(
            f"{name:14s} {info['input_width']:>11d} {info['sequence_length']:>6d} "
            f"{info['classes']:>7d} {info['scored_steps']:>6d}"
        )


@main.command("import-reference")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="checkpoint to write (default FILE stem + .qrnn.npz)")
@click.option("--order", type=int, default=None, help="neuron order (default: sidecar .json, else 2)")
def import_reference(file, output, order):
    """Convert a reference PyTorch state dict (.npz) to a qrnn-qiskit checkpoint."""
    from pathlib import Path

    from .exceptions import CheckpointError
    from .training import import_reference_npz, save_checkpoint

    try:
        checkpoint = import_reference_npz(file, order=order)
    except CheckpointError as exc:
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
@click.option("--backend", default="exact", show_default=True, help="exact (aer and ibm_* are not implemented yet)")
@click.option("--dataset", help="dataset name (default: the checkpoint's)")
@click.option("--data-dir", type=click.Path(file_okay=False), help="folder of the reference MNIST csv.gz files")
@click.option("--split", type=click.Choice(["train", "validate", "test"]), default="test", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the sampled measurements")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line")
def eval_command(checkpoint, backend, dataset, data_dir, split, seed, as_json):
    """Evaluate a checkpoint: loss, sampled accuracy, exact expected accuracy, CER."""
    from .exceptions import QRNNError
    from .training import evaluate_exact, get_dataset, load_checkpoint

    if backend != "exact":
        _fail(f"--backend {backend!r} is not available yet; use --backend exact.")
    try:
        ck = load_checkpoint(checkpoint)
        name = dataset or ck.meta.get("dataset")
        if not name:
            raise click.UsageError("The checkpoint does not name its dataset; pass --dataset.")
        ds = get_dataset(name, data_dir=data_dir, sentence_length=ck.meta.get("settings", {}).get("sentence_length"))
        result = evaluate_exact(ck.config, ck.parameters, ds, split=split, seed=seed)
    except (QRNNError, ValueError) as exc:
        _fail(str(exc))
    result["checkpoint"] = str(checkpoint)
    _emit(result, as_json)


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
    click.option("--weight-decay", type=float, default=0.0, show_default=True),
    click.option("--initial-bias", type=float, default=1.5707963267948966, show_default=True),
    click.option("--initial-bias-spread", type=float, default=0.1, show_default=True),
    click.option("--initial-weights-spread", type=float, default=0.01, show_default=True),
    click.option("--initial-unitaries-spread", type=float, default=0.01, show_default=True),
    click.option("--steps", type=int, default=5000, show_default=True),
    click.option("--seed", type=int, default=82727, show_default=True),
    click.option("--validate-every", type=int, default=10, show_default=True),
    click.option("--stop-at-loss", type=float, default=None),
    click.option("--timeout", type=float, default=None, help="seconds"),
]


def _with_train_options(fn):
    for option in reversed(_TRAIN_OPTIONS):
        fn = option(fn)
    return fn


@main.command("train")
@_with_train_options
@click.option("--backend", default="exact", show_default=True, help="exact (aer is not implemented yet)")
@click.option("--out", type=click.Path(file_okay=False), default="runs/qrnn", show_default=True)
@click.option("--tensorboard", is_flag=True, help="also write TensorBoard event files (tensorboard extra)")
@click.option("--test", "run_test", is_flag=True, help="evaluate the best checkpoint on the test split at the end")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line summarising the run")
def train_command(backend, out, tensorboard, run_test, as_json, **options):
    """Train a QRNN on the exact engine (reference settings and loss)."""
    from .exceptions import QRNNError
    from .training import evaluate_exact, get_dataset, load_checkpoint
    from .training.trainer import TrainSettings, train

    if backend != "exact":
        _fail(f"--backend {backend!r} is not available yet; use --backend exact.")
    try:
        settings = TrainSettings(**options, tensorboard=tensorboard, argv=sys.argv[1:])
        summary = train(settings, out)
        if run_test:
            best = load_checkpoint(summary["checkpoints"]["best"])
            dataset = get_dataset(settings.dataset, sentence_length=settings.sentence_length, data_dir=settings.data_dir)
            test = evaluate_exact(best.config, best.parameters, dataset, split="test", seed=settings.seed)
            summary.update({f"test_{k}": v for k, v in test.items() if k not in ("dataset", "split")})
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
@click.option("--json", "as_json", is_flag=True)
def resume_command(checkpoint, out, learning_rate, batch_size, steps, as_json):
    """Continue a training run exactly from its checkpoint."""
    from .exceptions import QRNNError
    from .training.trainer import resume

    try:
        summary = resume(checkpoint, out, learning_rate=learning_rate, batch_size=batch_size, steps=steps)
    except (QRNNError, ValueError) as exc:
        _fail(str(exc))
    _emit(summary, as_json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
