"""Two checkouts of this package side by side: the exact engine's compiled path on the mnist01 model.

Each round runs every checkout once, in turn, in a fresh process (so that each imports its own
``qrnn_qiskit`` and finds its own kernel cache), every other round in reverse order; the
machine's drift then falls on all of them alike. Use an even number of rounds. Prints one JSON
line per checkout: medians over rounds of each process's median ``forward_s`` and
``forward_backward_s`` (the model, batch and keys of ``benchmarks/engine.py``), and their ratio to
the first checkout.

Usage: git worktree add /tmp/before <commit>
       python benchmarks/engine_ab.py /tmp/before . [--rounds 4] [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/benchmarks")
import qrnn_qiskit
assert qrnn_qiskit.__file__.startswith({root!r}), qrnn_qiskit.__file__
from engine import _problem
from qrnn_qiskit.engine import ExactEngine
config, params, inputs, targets, scored = _problem(100, 100)
engine = ExactEngine(config, engine="cpu")
engine.loss_and_gradient(params, inputs, targets, scored)
engine.loss(params, inputs, targets, scored)
forward, both = [], []
for _ in range({repeats}):
    t = time.perf_counter(); engine.loss(params, inputs, targets, scored); forward.append(time.perf_counter() - t)
    t = time.perf_counter(); engine.loss_and_gradient(params, inputs, targets, scored); both.append(time.perf_counter() - t)
print(json.dumps({{"forward_s": statistics.median(forward), "forward_backward_s": statistics.median(both)}}))
"""


def _run(root: str, repeats: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=root, repeats=repeats)], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="repository roots; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="NUMBA_NUM_THREADS for every process")
    args = parser.parse_args()
    roots = [str(Path(c).resolve()) for c in args.checkouts]
    for root in roots:
        if not (Path(root) / "qrnn_qiskit" / "engine").is_dir():
            parser.error(f"{root} is not a checkout of this repository (no qrnn_qiskit/engine in it).")
        _run(root, 1, args.threads)  # compile (or load) its kernels outside the measured rounds
    results = {root: [] for root in roots}
    for round_ in range(args.rounds):
        # every other round in reverse order: the first process of a round runs measurably slower
        # (seen: 1.2-1.3x on forward_s for identical code), a bias that alternation cancels
        for root in roots if round_ % 2 == 0 else roots[::-1]:
            results[root].append(_run(root, args.repeats, args.threads))
    base = None
    for root in roots:
        line = {"benchmark": "engine_ab", "checkout": root, "rounds": args.rounds, "repeats": args.repeats,
                "threads": args.threads or "numba default"}
        for key in ("forward_s", "forward_backward_s"):
            line[key] = round(statistics.median(r[key] for r in results[root]), 4)
        base = base or line
        line["speedup_over_first"] = {k: round(base[k] / line[k], 2) for k in ("forward_s", "forward_backward_s")}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
