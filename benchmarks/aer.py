"""Aer sampling speed for one QRNN cell step (postselect and rus:1, CPU); one JSON line per model and mode.

``seconds_per_shot`` is the median over repeats of one SamplerV2 run of the runner's circuit
(bound weights: each parameter block one ``multiplexer``; gate fusion forced); ``naive_seconds_per_shot``
runs the same step built with one multi-controlled RY per subset and Aer's default options.

Usage: python benchmarks/aer.py [--shots 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.runners.aer import AerRunner

MODELS = {
    "simple-seq": QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=3),
    "mnist01": QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--naive-shots", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for (name, config), mode in [(item, mode) for item in MODELS.items() for mode in ("postselect", "rus:1")]:
        params = config.initial_parameters(seed=1)
        runner = AerRunner(shots=args.shots, seed=1, neuron_mode=mode)
        circuit = runner.circuit(config, 1, params)
        values = np.ones((1, circuit.num_parameters))
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            runner.run([(circuit, values)])
            times.append((time.perf_counter() - start) / args.shots)
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import SamplerV2

        naive = qrnn_sequence(config, 1, weights=params, inputs=np.ones(config.input_width),
                              neuron_mode=runner.neuron_mode, synthesis="mc")
        naive = generate_preset_pass_manager(optimization_level=1, backend=AerSimulator()).run(naive)
        start = time.perf_counter()
        SamplerV2(options={"run_options": {"seed_simulator": 1}}).run([naive], shots=args.naive_shots).result()
        naive_s = (time.perf_counter() - start) / args.naive_shots
        per_shot = statistics.median(times)
        print(json.dumps({
            "benchmark": "aer", "model": name, "qubits": config.num_qubits, "mode": mode, "device": "CPU",
            "shots": args.shots, "repeats": args.repeats, "seconds_per_shot": round(per_shot, 5),
            "shots_per_second": round(1 / per_shot, 1), "naive_seconds_per_shot": round(naive_s, 4),
            "speedup": round(naive_s / per_shot, 1), "operations": sum(circuit.count_ops().values()),
            "naive_operations": sum(naive.count_ops().values()),
        }), flush=True)


if __name__ == "__main__":
    main()
