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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
