"""Exact-engine and builder speed for the MNIST 0/1 model (I=2, W=8, S=2, k=2, d=2).

Prints one JSON line: median-of-N ``forward_s`` and ``forward_backward_s`` for one batch of 100
sequences of length 100 (99 cell steps; loss on the last step, teacher forcing elsewhere),
``peak_mib`` (peak resident memory increase of the gradient pass, from tracemalloc), and
``build_s``, the time to build the 99-step gate-level circuit with symbolic weights and inputs.

Usage: python benchmarks/engine.py [--repeats 5] [--batch 100] [--length 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc

import numpy as np

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--length", type=int, default=100)
    args = parser.parse_args()

    config = QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2)
    engine = ExactEngine(config)
    rng = np.random.default_rng(0)
    params = config.initial_parameters(weights_spread=0.0, seed=rng)
    steps = args.length - 1
    inputs = rng.integers(0, 4, (args.batch, steps))
    targets = np.zeros((args.batch, steps), dtype=np.int64)
    targets[:, -1] = rng.integers(0, 2, args.batch)
    scored = np.zeros(steps, dtype=bool)
    scored[-1] = True

    def timed(fn) -> list[float]:
        out = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return out

    forward = timed(lambda: engine.loss(params, inputs, targets, scored))
    both = timed(lambda: engine.loss_and_gradient(params, inputs, targets, scored))
    tracemalloc.start()
    engine.loss_and_gradient(params, inputs, targets, scored)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    build = timed(lambda: qrnn_sequence(config, steps))
    print(
        json.dumps(
            {
                "benchmark": "engine",
                "model": config.to_dict(),
                "batch": args.batch,
                "cell_steps": steps,
                "repeats": args.repeats,
                "forward_s": round(statistics.median(forward), 4),
                "forward_backward_s": round(statistics.median(both), 4),
                "peak_mib": round(peak / 2**20, 1),
                "build_s": round(statistics.median(build), 3),
                "num_parameters": config.num_parameters,
                "python": platform.python_version(),
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
