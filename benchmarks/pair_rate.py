"""Nanoseconds per pair update of the compiled engine, by workspace size: the achieved side of the
roofline in ``benchmarks/README.md``.

For models I=2, S=2, k=2, d=2 and W = 4..8 (mnist01 is W=8), 100 sequences of 99 steps, loss on
the last: the median of 7 forward passes and 7 forward + gradient passes in this process, divided
by the number of amplitude-pair updates one forward pass makes for one sequence (input and work
neurons and work-stage rotations on the 2**W workspace, output neurons on the 2**(W+2) full
state), times the sequences and steps. Set ``NUMBA_NUM_THREADS=1`` for the figure per core.

Usage: NUMBA_NUM_THREADS=1 python benchmarks/pair_rate.py
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.plan import StepPlan


def main() -> None:
    for workspace in range(4, 9):
        config = QRNNConfig(input_width=2, workspace=workspace, stages=2, order=2, degree=2)
        rng = np.random.default_rng(0)
        params = config.initial_parameters(weights_spread=0.0, seed=rng)
        inputs = rng.integers(0, 4, (100, 99))
        targets = np.zeros((100, 99), np.int64)
        targets[:, -1] = rng.integers(0, 2, 100)
        scored = np.zeros(99, bool)
        scored[-1] = True
        plan = StepPlan(config)
        pairs = len(plan.ws_ops) * 2 ** (workspace - 1) + len(plan.out_ops) * 2 ** (workspace + 1)
        engine = ExactEngine(config, engine="cpu")
        engine.loss_and_gradient(params, inputs, targets, scored)
        forward, both = [], []
        for _ in range(7):
            t = time.perf_counter()
            engine.loss(params, inputs, targets, scored)
            forward.append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.loss_and_gradient(params, inputs, targets, scored)
            both.append(time.perf_counter() - t)
        updates = pairs * inputs.size
        print(json.dumps({"benchmark": "pair_rate", "workspace": workspace, "pair_updates_per_pass": updates,
                          "forward_s": round(statistics.median(forward), 4),
                          "forward_backward_s": round(statistics.median(both), 4),
                          "forward_ns_per_pair": round(statistics.median(forward) / updates * 1e9, 3),
                          "forward_backward_ns_per_pair": round(statistics.median(both) / updates * 1e9, 3)}))


if __name__ == "__main__":
    main()
