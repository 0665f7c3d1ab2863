"""Aer parameter-shift training steps, checkouts side by side, and the time a step of larger models.

Part 1 (checkouts given): each round runs one process per checkout, every other round in reverse
order, timing the median of ``--repeats`` parameter-shift gradients (after a warm-up that builds
and transpiles the circuits) of the model and batch of ``benchmarks/runs/simple-bits-aer-param-shift``
(I=1 W=2 S=0 order 1 degree 1, two sequences of 3 steps, 1,024 shots, 434 circuit rows a step),
with each checkout's default sampling. Prints per checkout the median over rounds and the ratio
to the first checkout. (Whether the estimates are right is for the tests: at 1,024 shots this
model keeps about 2 shots at its last step, so single estimates are mostly noise either way.)

Part 2 (``--models``): this checkout's seconds a step for larger models (one weight vector and four, timed: a run's fixed cost and its cost a row;
``AerGradient.estimate_seconds``), per sampling.

Usage: git worktree add /tmp/before <commit>
       python benchmarks/aer_gradient_ab.py /tmp/before . [--rounds 2] [--repeats 3]
       python benchmarks/aer_gradient_ab.py --models
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import qrnn_qiskit
assert qrnn_qiskit.__file__.startswith({root!r}), qrnn_qiskit.__file__
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_gradient import AerGradient
cfg = QRNNConfig(input_width=1, workspace=2, stages=0, order=1, degree=1)
params = np.random.default_rng(7).normal(0, 0.5, cfg.num_parameters)
inputs, targets, scored = np.array([[0, 1, 0], [1, 0, 1]]), np.array([[1, 0, 1], [0, 1, 0]]), np.ones(3, bool)
gradient = AerGradient(cfg, AerRunner(shots=1024, seed=1), "param-shift")
gradient(params, inputs, targets, scored)
times = []
for _ in range({repeats}):
    t = time.perf_counter(); gradient(params, inputs, targets, scored); times.append(time.perf_counter() - t)
print(json.dumps({{"step_s": statistics.median(times), "sampling": getattr(gradient, "sampling", "per-shot"),
                  "rows": gradient.evaluations_per_step(3) * 2}}))
"""


def _child(root: str, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=root, repeats=repeats)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{root}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def side_by_side(roots: list[str], rounds: int, repeats: int) -> None:
    runs: dict[str, list[dict]] = {root: [] for root in roots}
    for round_index in range(rounds):
        for root in roots if round_index % 2 == 0 else roots[::-1]:
            runs[root].append(_child(root, repeats))
    base = statistics.median(r["step_s"] for r in runs[roots[0]])
    for root in roots:
        step = statistics.median(r["step_s"] for r in runs[root])
        last = runs[root][-1]
        print(json.dumps({
            "benchmark": "aer-param-shift-step", "checkout": root, "sampling": last["sampling"], "rows": last["rows"],
            "shots": 1024, "step_s": round(step, 3), "rounds_s": [round(r["step_s"], 3) for r in runs[root]],
            "speedup_vs_first": round(base / step, 2),
        }), flush=True)


def larger_models() -> None:
    import numpy as np

    from qrnn_qiskit.core.config import QRNNConfig
    from qrnn_qiskit.runners.aer import AerRunner
    from qrnn_qiskit.runners.aer_gradient import AerGradient

    models = {  # name: (config, batch, steps)
        "simple-bits S=1": (QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1), 2, 3),
        "simple-seq (paper: I=3 W=5 S=2 k=2 d=3), batch 2, length 3":
            (QRNNConfig(input_width=3, workspace=5, stages=2, order=2, degree=3), 2, 3),
    }
    for name, (cfg, batch, steps) in models.items():
        rng = np.random.default_rng(0)
        inputs = rng.integers(0, cfg.num_outcomes, (batch, steps))
        targets = rng.integers(0, cfg.num_outcomes, (batch, steps))
        # the default choice; on small models the other too (a per-step row of the 10-qubit model
        # takes minutes: the density matrix's 4**11 entries against 1,024 x 2**10 amplitudes)
        small = cfg.num_qubits <= 6
        shots = 1024 if small else 32  # the wide model probed at 32 shots and scaled (a shot's cost is flat)
        for sampling in (None, "per-shot", "per-step") if small else (None,):
            gradient = AerGradient(cfg, AerRunner(shots=shots, seed=1), "param-shift", sampling=sampling)
            started = time.perf_counter()
            seconds = gradient.estimate_seconds(inputs, targets, probe_rows=4 if small else 2) * 1024 / shots
            print(json.dumps({
                "benchmark": "aer-param-shift-model", "model": name, "qubits": cfg.num_qubits,
                "sampling": gradient.sampling + (" (default)" if sampling is None else ""),
                "rows_per_step": gradient.evaluations_per_step(steps) * batch, "shots": 1024, "probed_at_shots": shots,
                "estimated_step_s": round(seconds, 1), "probe_s": round(time.perf_counter() - started, 1),
            }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", help="repository roots; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", action="store_true", help="time a step of larger models instead")
    args = parser.parse_args()
    if args.models:
        larger_models()
    else:
        side_by_side([str(Path(c).resolve()) for c in args.checkouts or ["."]], args.rounds, args.repeats)


if __name__ == "__main__":
    main()
