"""Compiler speed and size: build, export and report for the simple-seq and MNIST 0/1 models.

Prints one JSON line per (model, T): median-of-N seconds to build the T-step circuit (symbolic
weights and inputs), to export it as OpenQASM 3, and to produce the report (logical figures of the
whole circuit plus the generic-basis transpile of one step, scaled to T), and to derive the same
logical figures and OpenQASM from the distinct steps (``UnrolledSequence``, what ``qrnn build``
does; checked equal), with the 2-qubit gate
count and depth on the generic basis {cx, rz, sx, x} (default synthesis ``auto``); then, per
model and block-synthesis strategy, the 2-qubit gates and depth of one cell step on the generic
basis and on fake_torino (with the default and the compact layout, and the SWAP overhead).

Usage: python benchmarks/build.py [--repeats 3] [--lengths 1 10 99] [--strategies-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.circuits.export import export_qasm
from qrnn_qiskit.circuits.report import logical_report
from qrnn_qiskit.circuits.targets import transpile_report
from qrnn_qiskit.circuits.unrolled import UnrolledSequence
from qrnn_qiskit.core.config import QRNNConfig

MODELS = {
    "simple-seq": QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=3),
    "mnist01": QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2),
}


def median_time(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 10, 99])
    parser.add_argument("--strategies-only", action="store_true", help="only the per-strategy step figures")
    args = parser.parse_args()
    if args.strategies_only:
        args.lengths = []
    folder = Path(tempfile.mkdtemp(prefix="qrnn-build-bench-"))
    for name, config in MODELS.items():
        step = qrnn_sequence(config, 1)
        for length in args.lengths:
            build_s, circuit = median_time(lambda: qrnn_sequence(config, length), args.repeats)
            export_s, _ = median_time(lambda: export_qasm(circuit, folder / f"{name}-{length}.qasm"), args.repeats)

            def report():
                return logical_report(circuit), transpile_report(step, "generic", length=length)

            report_s, (logical, generic) = median_time(report, args.repeats)

            def steps():  # what qrnn build does: the figures and the text from the distinct steps
                sequence = UnrolledSequence(config, length)
                return sequence.logical_report(), sequence.export(folder / f"{name}-{length}-steps.qasm")

            steps_s, (steps_logical, _) = median_time(steps, args.repeats)
            identical = (folder / f"{name}-{length}-steps.qasm").read_bytes() == (folder / f"{name}-{length}.qasm").read_bytes()
            print(json.dumps({
                "benchmark": "build", "model": name, "steps": length, "repeats": args.repeats,
                "build_s": round(build_s, 3), "export_s": round(export_s, 3), "report_s": round(report_s, 3),
                "steps_logical_and_export_s": round(steps_s, 3), "steps_same_figures": steps_logical == logical,
                "steps_same_qasm": identical,
                "operations": sum(logical["operations"].values()), "measurements": logical["measurements"],
                "two_qubit_gates_generic": generic["two_qubit_gates"], "depth_generic": generic["depth"],
                "qasm_mib": round((folder / f"{name}-{length}.qasm").stat().st_size / 2**20, 2),
            }), flush=True)
        for strategy in ("mc", "multiplexer", "phase-polynomial", "auto"):
            one = qrnn_sequence(config, 1, synthesis=strategy)
            generic = transpile_report(one, "generic")
            torino = transpile_report(one, "fake_torino", layout="auto")
            print(json.dumps({
                "benchmark": "build-synthesis", "model": name, "synthesis": strategy, "steps": 1,
                "generic_two_qubit_gates": generic["two_qubit_gates"], "generic_depth": generic["depth"],
                "torino_two_qubit_gates": torino["two_qubit_gates"], "torino_depth": torino["depth"],
                "torino_layout": torino["layout_strategy"],
                "torino_two_qubit_gates_default_layout": torino["two_qubit_gates_per_step_default_layout"],
                "torino_swap_overhead_two_qubit_gates": torino["swap_overhead_two_qubit_gates_per_step"],
                "torino_duration_s": torino["duration_seconds"],
                "torino_success_probability_estimate": torino["success_probability_estimate"],
                "transpile_s": round(generic["transpile_seconds_per_step"] + torino["transpile_seconds_per_step"], 3),
            }), flush=True)

if __name__ == "__main__":
    main()
