"""The ``qrnn`` command line. Each command parses its options, calls the library function of the
same name with the same parameter names (:func:`qrnn_qiskit.build`, :func:`~qrnn_qiskit.train`,
:func:`~qrnn_qiskit.resume`, :func:`~qrnn_qiskit.evaluate`, :func:`~qrnn_qiskit.import_reference`)
and prints. Defaults come from those functions and from :class:`~qrnn_qiskit.TrainSettings`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import re
import sys

import click
from click.core import ParameterSource

from qrnn_qiskit.circuits.synthesis import STRATEGIES
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.data.fetch import fetch
from qrnn_qiskit.data.registry import list_datasets
from qrnn_qiskit.engine.spec import ENGINES, PRECISIONS
from qrnn_qiskit.evaluation.exact import UNSCORED
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.models.reference import import_reference as import_file
from qrnn_qiskit.training.plot import plot_run
from qrnn_qiskit.training.recipes import list_recipes, recipe_settings
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.build import build as build_qrnn
from qrnn_qiskit.workflows.build import format_report
from qrnn_qiskit.workflows.evaluate import evaluate
from qrnn_qiskit.workflows.sweep import format_sweep, sweep
from qrnn_qiskit.workflows.train import resume, train

__all__ = ["main"]

SPLITS = click.Choice(["train", "validate", "test"])
LAYOUTS = click.Choice(["auto", "default", "compact"])


class _EchoHandler(logging.Handler):
    """The library's log lines (costs, job ids) on standard error, through click."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _library_errors(fn):
    """Library failures (run-time errors, bad values, missing files) become one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:  # bad arguments: a usage error (exit 2)
            if isinstance(exc, QRNNError):
                raise click.ClickException(_as_flags(str(exc))) from exc
            raise click.UsageError(_as_flags(str(exc))) from exc
        except (QRNNError, OSError) as exc:  # run-time failures (exit 1)
            raise click.ClickException(_as_flags(str(exc))) from exc

    return wrapper


def _as_flags(message: str) -> str:
    """Library messages name parameters (``data_dir``); on the command line they read as flags
    (``--data-dir``). Only names with an underscore are translated: plain words stay words."""
    for param in click.get_current_context().command.params:
        longs = [o for o in param.opts if o.startswith("--")]
        if not (param.name and longs):
            continue
        # a keyword with its value (fmt='qasm3', tensorboard=True) reads as the flag and its value
        flag_value = (lambda m, flag=longs[0], is_flag=param.is_flag: flag if is_flag else f"{flag} {m[2]}")
        message = re.sub(rf"(?<![\w-]){param.name}=(['\"]?)([\w:.,-]+)\1", flag_value, message)
        if "_" in param.name:
            message = re.sub(rf"(?<![\w-]){param.name}(?![\w])", longs[0], message)
    return message


def _default(function, name: str):
    """The default of parameter ``name`` of the library function ``function``."""
    return inspect.signature(function).parameters[name].default


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:32s} {value}")


#: a run stopped by a signal exits as the shell expects (128 + the signal), after its checkpoint
SIGNAL_EXITS = {"interrupted": 130, "terminated": 143}


def _exit_as_stopped(summary: dict) -> None:
    if summary.get("stopped") == "diverged":
        raise click.ClickException(
            f"training diverged at step {summary['diverged_at_step']} ({summary['diverged']} not finite). The last "
            f"finite state, step {summary['steps']}, is in {summary['checkpoints']['last']}: continue with a smaller "
            f"learning rate, `qrnn resume {summary['out']} --learning-rate LR`.")
    code = SIGNAL_EXITS.get(summary.get("stopped"))
    if code is not None:
        raise SystemExit(code)


@click.group()
@click.version_option(package_name="qrnn-qiskit")
def main() -> None:
    """Quantum Recurrent Neural Networks (Bausch, NeurIPS 2020) on Qiskit."""
    logger = logging.getLogger("qrnn_qiskit")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


# ------------------------------------------------------------------------------------------ build
_B = build_qrnn


def _synthesis_choice():
    return click.Choice(STRATEGIES)


@main.command()
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="bind the weights of a trained model")
@click.option("--input-width", "-I", type=int, default=_default(_B, "input_width"), show_default=True, help="io lanes I (bits per token)")
@click.option("--workspace", "-W", type=int, default=_default(_B, "workspace"), show_default=True, help="workspace lanes W")
@click.option("--stages", "-S", type=int, default=_default(_B, "stages"), show_default=True, help="work stages S")
@click.option("--order", "-k", type=int, default=_default(_B, "order"), show_default=True, help="neuron order k")
@click.option("--degree", "-d", type=int, default=_default(_B, "degree"), show_default=True, help="neuron degree d")
@click.option("--length", "-T", type=int, help="cell steps to unroll [default: 1, or every step of --sample]")
@click.option("--dataset", help="bind the input bits of one sequence of this dataset (with --sample; default: the checkpoint's)")
@click.option("--sample", type=int, help="index of that sequence in --split")
@click.option("--split", type=SPLITS, default=_default(_B, "split"), show_default=True, help="split of --sample")
@click.option("--data-dir", type=click.Path(file_okay=False), help="folder of the reference MNIST csv.gz files")
@click.option("--neuron-mode", default=_default(_B, "neuron_mode"), show_default=True,
              help="postselect, rus[:R] (R retries) or amplify[:L] (fixed-point amplification, L odd >= 3)")
@click.option("--target", "targets", multiple=True,
              help="generic, fake_<name> (e.g. fake_torino) or ibm_<name> (needs an account); repeatable")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=_default(_B, "optimization_level"),
              show_default=True, help="preset pass manager level of the target reports")
@click.option("--synthesis", type=_synthesis_choice(), default=_default(_B, "synthesis"), show_default=True,
              help="how each neuron's parameter block is synthesised (auto: fewest CNOTs per neuron shape; "
                   "ucgate: one UCGate, needs --checkpoint)")
@click.option("--layout", type=LAYOUTS, default=_default(_B, "layout"), show_default=True,
              help="initial layout on device targets (auto: the better of the transpiler's and a compact one)")
@click.option("--compare/--no-compare", default=_default(_B, "compare"), show_default=True,
              help="report the 2-qubit gates of every synthesis strategy side by side")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="write OpenQASM here")
@click.option("--format", "fmt", type=click.Choice(["qasm3", "qasm2"]), default=_default(_B, "fmt"), show_default=True,
              help="OpenQASM version of --output")
@click.option("--report/--no-report", default=True, show_default=True, help="print the report")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON line")
@click.option("--draw", is_flag=True, help="print a text drawing (small circuits only)")
@click.option("--token", help="IBM Quantum API key for ibm_* targets (default: $QISKIT_IBM_TOKEN, then the saved account)")
@click.option("--instance", help="IBM Quantum instance for ibm_* targets (default: $QISKIT_IBM_INSTANCE)")
@_library_errors
def build(report, as_json, draw, **options):
    """Build the QRNN as Qiskit circuits, report them (logical and per target), export OpenQASM."""
    result = build_qrnn(options.pop("checkpoint"), **options)
    if draw:
        size = sum(result.report["logical"]["operations"].values())
        if size > 2000:
            raise click.ClickException(f"--draw is for small circuits; this one has {size} operations.")
        click.echo(result.circuit.draw(output="text", fold=120))
    if as_json:
        click.echo(json.dumps(result.report))
    elif report:
        click.echo(format_report(result.report))


# --------------------------------------------------------------------------------------- datasets
@main.group("datasets", invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="folder of the MNIST data files (default: the cache of `qrnn datasets fetch`)")
@click.pass_context
def datasets_command(ctx, data_dir):
    """List the datasets with their input width, sequence length and classes (or fetch their data)."""
    if ctx.invoked_subcommand is not None:
        return
    click.echo(f"{'name':18s} {'input_width':>11s} {'length':>6s} {'classes':>7s} {'scored':>6s}")
    for entry in list_datasets(data_dir):
        suffix = f"  [{entry['family']}: {entry['note']}]" if entry["note"] else ""
        if "missing" in entry:
            click.echo(f"{entry['name']:18s} ({entry['missing']}){suffix}")
        else:
            click.echo(f"{entry['name']:18s} {entry['input_width']:>11d} {entry['sequence_length']:>6d} "
                       f"{entry['classes']:>7d} {entry['scored_steps']:>6d}{suffix}")


@datasets_command.command("fetch")
@click.argument("name")
@click.option("--dir", "dir", type=click.Path(file_okay=False),
              help="folder to download into (default: $QRNN_DATA_DIR, else ~/.cache/qrnn-qiskit/data)")
@click.option("--mirror", help="base URL holding every file flat (default: the reference repository and the MNIST mirror)")
@click.option("--timeout", type=float, default=_default(fetch, "timeout"), show_default=True,
              help="seconds to wait for each read from a server")
@click.option("--total-timeout", type=float, default=_default(fetch, "total_timeout"), show_default=True,
              help="seconds a file's whole download may take")
@_library_errors
def fetch_command(name, dir, mirror, timeout, total_timeout):
    """Download and check the data files of dataset NAME (or `all`)."""
    paths = fetch(name, dir, mirror=mirror, timeout=timeout, total_timeout=total_timeout)
    folder = paths[0].parent if paths else "(nothing to fetch: this dataset is generated or bundled)"
    click.echo(f"{len(paths)} file(s) checked in {folder}")


# ------------------------------------------------------------------------------- import-reference
@main.command("import-reference")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="checkpoint to write (default FILE stem + .qrnn.npz)")
@click.option("--order", "-k", type=int, default=None,
              help="neuron order (default: the .tar's stored arguments or the .npz's sidecar .json, else 2)")
@click.option("--overwrite", is_flag=True, help="replace an existing output checkpoint")
@_library_errors
def import_reference(file, output, order, overwrite):
    """Convert a model trained by the reference PyTorch implementation to a qrnn-qiskit checkpoint.

    FILE is an .npz of its state dict (with an optional sidecar .json of settings), or one of its
    checkpoint .tar files (needs the torch extra; read with weights_only, never unpickled freely).
    """
    path = import_file(file, output, order=order, overwrite=overwrite)
    cfg = load_checkpoint(path).config
    click.echo(f"wrote {path}: I={cfg.input_width} W={cfg.workspace} S={cfg.stages} order={cfg.order} "
               f"degree={cfg.degree}, {cfg.num_parameters} parameters")


# ------------------------------------------------------------------------------------------- eval
_E = evaluate


@main.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--backend", default=_default(_E, "backend"), show_default=True,
              help="exact; aer (sampled shots of the real circuits); ibm_<name> (IBM Quantum device) or fake_<name> (offline)")
@click.option("--dataset", help="dataset name (default: the checkpoint's)")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="folder of the reference MNIST csv.gz files (default: the one the checkpoint was trained from)")
@click.option("--split", type=SPLITS, default=_default(_E, "split"), show_default=True, help="split to evaluate")
@click.option("--limit", type=int, help="evaluate only the first N sequences of the split")
@click.option("--shots", type=int, default=_default(_E, "shots"), show_default=True, help="shots per sequence (aer, ibm_*, fake_*)")
@click.option("--neuron-mode", default=_default(_E, "neuron_mode"), show_default=True,
              help="postselect, rus[:R] (aer, ibm_*, fake_*) or amplify[:L] (every backend; L odd >= 3)")
@click.option("--unscored", type=click.Choice(UNSCORED), default=_default(_E, "unscored"), show_default=True,
              help="don't-care steps: postselect on their targets (the reference) or measure and continue (hardware)")
@click.option("--trajectories", type=click.IntRange(min=1),
              help="estimate --unscored measure by N sampled trajectories a sequence on the pure path (exact backend; "
              "default: exactly, on the density path)")
@click.option("--noise", help="exact: the device noise to compute under (none, rates such as neuron=0.01,readout=0.02, "
              "or fake_<name>); aer: fake_<name>, whose noise model the shots run under")
@click.option("--device", type=click.Choice(["CPU", "GPU"]), default=_default(_E, "device"), show_default=True, help="Aer device")
@click.option("--seed", type=int, default=_default(_E, "seed"), show_default=True, help="seed of the sampled measurements")
@click.option("--token", help="IBM Quantum API key (default: $QISKIT_IBM_TOKEN, then the saved account); never printed")
@click.option("--instance", help="IBM Quantum instance CRN or name (default: $QISKIT_IBM_INSTANCE)")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=_default(_E, "optimization_level"),
              show_default=True, help="transpiler level (ibm_*, fake_*)")
@click.option("--layout", type=LAYOUTS, default=_default(_E, "layout"), show_default=True, help="initial layout (ibm_*, fake_*)")
@click.option("--dynamical-decoupling", is_flag=True, help="enable dynamical decoupling (not with rus mode)")
@click.option("--twirling", is_flag=True, help="enable gate and measurement twirling")
@click.option("--yes", is_flag=True, help="submit to a real device after the cost is shown")
@click.option("--submit-anyway", is_flag=True, help="sample or submit even when the engine expects less than one "
              "accepted shot a sequence (aer, ibm_*, fake_*)")
@click.option("--out", type=click.Path(file_okay=False),
              help="folder for jobs.json and result.json (ibm_*: default runs/ibm-<backend>-<time>)")
@click.option("--job-id", "job_ids", multiple=True, help="collect these submitted jobs instead of submitting (repeatable, in order)")
@click.option("--jobs", type=click.Path(),
              help="collect the jobs recorded in DIR/jobs.json (backend, ids, dataset, split, limit, shots, mode from the record)")
@click.option("--ensemble", multiple=True, type=click.Path(dir_okay=False),
              help="another member of an ensemble with CHECKPOINT (repeatable): their distributions averaged per step")
@click.option("--engine", type=click.Choice(ENGINES), default=_default(_E, "engine"), show_default=True,
              help="exact engine path: compiled cpu kernels, the numpy reference, or gpu (CUDA; gpu extra)")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_default(_E, "precision"), show_default=True,
              help="exact engine arithmetic (float32: cpu or gpu engine)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line")
@_library_errors
def eval_command(checkpoint, as_json, **options):
    """Evaluate a checkpoint: loss, sampled accuracy, exact expected accuracy, CER, acceptance."""
    _emit(evaluate(checkpoint, **options), as_json)


# ------------------------------------------------------------------------------------------ train
_GROUP_TITLES = {"data": "Data", "model": "Model", "optimizer": "Optimiser", "run": "Run"}


class _GroupedCommand(click.Command):
    """A command whose --help shows the training settings in their groups (data, model,
    optimiser, run), then its own options."""

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "settings_group", None) or "", []).append(record)
        for group, title in _GROUP_TITLES.items():
            if sections.get(group):
                with formatter.section(f"{title} settings"):
                    formatter.write_dl(sections[group])
        if sections.get(""):
            with formatter.section("Options"):
                formatter.write_dl(sections[""])


def _option_kwargs(f: dataclasses.Field) -> dict:
    """click's arguments for a settings field: default, help, and how its value is spelled."""
    meta = f.metadata
    kwargs = {"help": meta["help"], "show_default": f.default is not None}
    if f.default is not dataclasses.MISSING:
        kwargs["default"] = f.default
    if isinstance(f.default, bool):
        kwargs["is_flag"] = True
    elif "choices" in meta:
        kwargs["type"] = click.Choice(meta["choices"])
    elif "parse" in meta:
        kwargs["callback"] = _parsed(meta["parse"])
        kwargs["metavar"] = meta.get("metavar")
    elif meta.get("path"):
        kwargs["type"] = click.Path(file_okay=False)
    elif meta.get("file"):
        kwargs["type"] = click.Path(dir_okay=False)
    else:
        kwargs["type"] = meta.get("type", type(f.default))
    return kwargs


def _settings_options(fn=None, *, exclude: tuple = ()):
    """One click option per training setting (:meth:`TrainSettings.options`), with its default,
    help and flags, tagged with its group for the grouped help."""
    if fn is None:
        return functools.partial(_settings_options, exclude=exclude)
    for name, (group, f) in reversed(list(TrainSettings.options().items())):
        meta = f.metadata
        if not meta.get("cli", True) or name in exclude:
            continue
        names = [f"--{name.replace('_', '-')}", *meta.get("aliases", ()), *([meta["short"]] if "short" in meta else [])]
        fn = click.option(*names, name, **_option_kwargs(f))(fn)
        fn.__click_params__[-1].settings_group = group
    return fn


def _parsed(parse):
    def callback(ctx, param, value):
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _given(ctx: click.Context, options: dict) -> dict:
    """The options typed on the command line (not left at their defaults)."""
    return {name: value for name, value in options.items()
            if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}


def _train_settings(ctx: click.Context, recipe: str | None, options: dict, config: str | None = None) -> TrainSettings:
    """The options as settings; with a recipe or a run's config.json, its settings with the options
    typed taking precedence."""
    if recipe is not None and config is not None:
        raise click.UsageError("Give --recipe or --config, not both.")
    if config is not None:
        return TrainSettings.from_config(config, **_given(ctx, options), argv=sys.argv[1:])
    if recipe is None:
        return TrainSettings(**options, argv=sys.argv[1:])
    return recipe_settings(recipe, **_given(ctx, options), argv=sys.argv[1:])


@main.command("train", cls=_GroupedCommand)
@_settings_options
@click.option("--recipe", help="start from a named recipe (qrnn recipes lists them); options given beside it override it")
@click.option("--config", type=click.Path(dir_okay=False),
              help="rerun the settings of a run's config.json; options given beside it override them")
@click.option("--out", type=click.Path(file_okay=False), default=_default(train, "out"),
              show_default=True, help="run folder (config.json, metrics.jsonl, best.npz, last.npz, final.npz); "
              "refused if it holds files")
@click.option("--overwrite", is_flag=True, help="replace the run in a --out that holds one")
@click.option("--test", is_flag=True, help="evaluate the best checkpoint on the test split at the end")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line summarising the run")
@click.pass_context
@_library_errors
def train_command(ctx, recipe, config, out, overwrite, test, as_json, **options):
    """Train a QRNN (reference settings and loss) on the exact engine or with Aer gradients."""
    summary = train(_train_settings(ctx, recipe, options, config), out, overwrite=overwrite, test=test)
    _emit(summary, as_json)
    _exit_as_stopped(summary)


@main.command("recipes")
@click.option("--json", "as_json", is_flag=True, help="print them as one JSON line, settings included")
def recipes_command(as_json):
    """List the named training recipes (qrnn train --recipe NAME)."""
    entries = list_recipes()
    if as_json:
        click.echo(json.dumps(entries))
        return
    for entry in entries:
        click.echo(f"{entry['name']:16s} {entry['dataset']:18s} {entry['description']}")


@main.command("sweep", cls=_GroupedCommand)
@_settings_options(exclude=("workers", "address"))
@click.option("--grid", multiple=True, metavar="NAME=V1,V2,...",
              help="a swept setting and its values (repeatable), e.g. --grid learning-rate=0.01,0.05")
@click.option("--seeds", help="seeds of every combination: 112-116 or 1,5,9 (default: --seed)")
@click.option("--random", type=int, help="train only N trials drawn from the grid (random search)")
@click.option("--max-concurrent", type=int,
              help="trials at once: more than 1 runs them as Ray tasks (distributed extra); default 1 (in this process), "
                   "or with --address the cluster's CPUs")
@click.option("--address", help="Ray cluster to run the trials on: auto or HOST:PORT")
@click.option("--target-loss", type=float, help="also report the first step whose validation loss fell below this")
@click.option("--out", type=click.Path(file_okay=False), default=_default(sweep, "out"),
              show_default=True, help="sweep folder: one run folder per trial, sweep.json, sweep.png")
@click.option("--json", "as_json", is_flag=True, help="print the table as one JSON line")
@_library_errors
def sweep_command(out, grid, seeds, random, max_concurrent, address, target_loss, as_json, **options):
    """Train a grid of settings and seeds, one run folder per trial; rerun to continue it."""
    result = sweep(TrainSettings(**options, argv=sys.argv[1:]), out, grid=grid, seeds=seeds, random=random,
                   max_concurrent=max_concurrent, address=address, target_loss=target_loss)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(format_sweep(result))
        click.echo(f"table: {result['table']}" + (f"  plot: {result['plot']}" if result["plot"] else ""))


@main.command("resume")
@click.argument("checkpoint", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False),
              help="run folder (default: the checkpoint's own; another must be new or empty)")
@click.option("--overwrite", is_flag=True, help="replace the run in another --out that holds one")
@click.option("--learning-rate", type=float, help="new learning rate from here on")
@click.option("--batch-size", type=int, help="new batch size")
@click.option("--steps", type=int, help="new total number of steps")
@click.option("--timeout", type=float, help="new limit on the run's total seconds (time already spent counts)")
@click.option("--stop-at-loss", type=float, help="new validation loss to stop below")
@click.option("--validation-size", type=int,
              help="switch to a fixed validation set of N sequences (0: the whole split); the best loss restarts")
@click.option("--workers", type=int, help="new number of data-parallel Ray workers (same trajectory)")
@click.option("--address", help="Ray cluster to join: auto or HOST:PORT")
@click.option("--engine", type=click.Choice(ENGINES), help="continue on another exact engine path (cpu, numpy, gpu)")
@click.option("--precision", type=click.Choice(PRECISIONS), help="continue in another precision")
@click.option("--neuron-mode", help="continue under another neuron meaning (postselect, amplify[:L], rus[:R], keep): "
              "fine-tuning")
@click.option("--unscored", type=click.Choice(UNSCORED),
              help="continue with the unscored steps postselected or measured (a device's meaning)")
@click.option("--noise", help="continue under another noise: none, rates, or a backend (fake_torino)")
@click.option("--test", is_flag=True, help="evaluate the best checkpoint on the test split at the end")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line summarising the run")
@_library_errors
def resume_command(checkpoint, out, as_json, **options):
    """Continue a training run exactly from CHECKPOINT: a run folder (its newest checkpoint) or a
    checkpoint file."""
    summary = resume(checkpoint, out, **options)
    _emit(summary, as_json)
    _exit_as_stopped(summary)


# ------------------------------------------------------------------------------------------- plot
@main.command("plot")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="PNG to write (default RUN_DIR/curves.png)")
@_library_errors
def plot_command(run_dir, output):
    """Draw a run's loss and error-rate curves to a PNG (plot extra: matplotlib)."""
    click.echo(f"wrote {plot_run(run_dir, output)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
