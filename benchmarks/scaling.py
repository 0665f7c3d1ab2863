"""Data-parallel scaling on Ray: one training step's objective of the MNIST 0/1 model.

Prints one JSON line per configuration: the median of ``--repeats`` evaluations of loss and
gradient for one batch of ``--batch`` sequences (100 steps each), in this process (one compiled
kernel thread, then all) and on 1 and 2 Ray workers of a local instance (one kernel thread each),
with sequences per second. ``ray_overhead_s`` is the 1-worker time minus the one-thread
in-process time: what going through Ray costs per step (the batch and parameters shipped, the
per-sequence rows returned). Needs ../shared (the MNIST files) and the distributed extra.

Usage: python benchmarks/scaling.py [--batch 200] [--repeats 3] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.training.distributed import DataParallelObjective
from qrnn_qiskit.training.loop import GRAD_CLIP, ExactObjective

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rvqe-mnist"


def _median_seconds(objective, batch, params, repeats: int) -> float:
    objective.start(batch)
    objective(params)  # warm-up: actors built, engines' tables made
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        objective(params)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    dataset = get_dataset("mnist01", data_dir=DATA)
    config = QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2)
    params = config.initial_parameters(seed=1)
    batch = dataset.batch(args.batch // 2, np.random.default_rng(0))  # per digit
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # like for like with one actor, which runs one kernel thread
    local = _median_seconds(ExactObjective(config, dataset.scored()), batch, params, args.repeats)
    numba.set_num_threads(threads)
    every = _median_seconds(ExactObjective(config, dataset.scored()), batch, params, args.repeats)
    rows = [{"workers": 0, "where": "this process, 1 kernel thread", "seconds": local},
            {"workers": 0, "where": f"this process, {threads} kernel threads", "seconds": every}]
    for workers in args.workers:
        objective = DataParallelObjective(config, dataset.scored(), workers, None, GRAD_CLIP)
        try:
            rows.append({"workers": workers, "where": "ray (local)",
                         "seconds": _median_seconds(objective, batch, params, args.repeats)})
        finally:
            objective.close()
    one = next((r["seconds"] for r in rows if r["workers"] == 1), None)
    for row in rows:
        row.update({"benchmark": "scaling", "batch": args.batch, "repeats": args.repeats,
                    "seconds": round(row["seconds"], 3), "sequences_per_second": round(args.batch / row["seconds"], 1)})
        if row["workers"] == 1:
            row["ray_overhead_s"] = round(one - local, 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
