"""Two checkouts of this package side by side: the exact engine's compiled path on the mnist01 model.

Each round runs every checkout once, in turn, in a fresh process (so that each imports its own
``qrnn_qiskit`` and finds its own kernel cache), every other round in reverse order; the
machine's drift then falls on all of them alike. Use an even number of rounds. Prints one JSON
line per checkout: medians over rounds of each process's median ``forward_s`` and
``forward_backward_s`` (the model, batch and keys of ``benchmarks/engine.py``), and their ratio to
the first checkout.

With ``--same-process`` (two checkouts) both run in one process instead: the baseline's package is
copied to a temporary folder as ``qrnn_baseline`` (its import names rewritten), and the two are
called in turn, the order alternating, ``--repeats`` times each. Use it to measure a change of a
few per cent: fresh-process pairs of two checkouts of identical code measured 1.07-1.19x apart
(either way round, from run to run: each checkout compiles and loads its own kernels), which
hides such a change; in one process that bias does not arise. It also checks that the two give
the same loss and gradient bits.

Usage: git worktree add /tmp/before <commit>
       python benchmarks/engine_ab.py /tmp/before . [--rounds 4] [--repeats 7] [--threads N]
       python benchmarks/engine_ab.py /tmp/before . --same-process [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


SAME_PROCESS_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {copy!r}); sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/benchmarks")
import numpy as np
import qrnn_qiskit
assert qrnn_qiskit.__file__.startswith({root!r}), qrnn_qiskit.__file__
from engine import MODEL, _problem
import qrnn_baseline.core.config as base_config
import qrnn_baseline.engine as base_engine
from qrnn_qiskit.engine import ExactEngine
config, params, inputs, targets, scored = _problem(100, 100)
engines = {{"baseline": base_engine.ExactEngine(base_config.QRNNConfig(**MODEL), engine="cpu"),
            "change": ExactEngine(config, engine="cpu")}}
first = {{name: e.loss_and_gradient(params, inputs, targets, scored)[:2] for name, e in engines.items()}}
same = all(np.array_equal(np.atleast_1d(a), np.atleast_1d(b)) for a, b in zip(*first.values()))
for e in engines.values():
    e.loss(params, inputs, targets, scored)
times = {{(name, key): [] for name in engines for key in ("forward_s", "forward_backward_s")}}
for r in range({repeats}):
    for name in list(engines) if r % 2 == 0 else list(engines)[::-1]:
        e = engines[name]
        t = time.perf_counter(); e.loss(params, inputs, targets, scored); times[name, "forward_s"].append(time.perf_counter() - t)
        t = time.perf_counter(); e.loss_and_gradient(params, inputs, targets, scored)
        times[name, "forward_backward_s"].append(time.perf_counter() - t)
med = {{k: statistics.median(v) for k, v in times.items()}}
print(json.dumps({{"benchmark": "engine_ab", "mode": "same process", "repeats": {repeats}, "same_bits": bool(same),
                  **{{f"{{name}}_{{key}}": round(med[name, key], 4) for name, key in med}},
                  "speedup": {{key: round(med["baseline", key] / med["change", key], 3)
                              for key in ("forward_s", "forward_backward_s")}}}}))
"""


def _same_process(baseline: str, root: str, repeats: int, threads: int | None) -> None:
    """Both checkouts in one process (see the module's docstring); prints one JSON line."""
    with tempfile.TemporaryDirectory() as copy:
        target = Path(copy) / "qrnn_baseline"
        shutil.copytree(Path(baseline) / "qrnn_qiskit", target, ignore=shutil.ignore_patterns("__pycache__"))
        for path in target.rglob("*.py"):
            path.write_text(path.read_text().replace("qrnn_qiskit", "qrnn_baseline"))
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(copy) / "numba-cache"))
        if threads:
            env["NUMBA_NUM_THREADS"] = str(threads)
        code = SAME_PROCESS_CHILD.format(copy=copy, root=root, repeats=repeats)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(f"The same-process comparison failed:\n{out.stderr[-2000:]}")
        line = json.loads(out.stdout.strip().splitlines()[-1])
        line.update(baseline=baseline, change=root, threads=threads or "numba default")
        print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="repository roots; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="NUMBA_NUM_THREADS for every process")
    parser.add_argument("--same-process", action="store_true", help="both checkouts in one process (two only)")
    args = parser.parse_args()
    roots = [str(Path(c).resolve()) for c in args.checkouts]
    for root in roots:
        if not (Path(root) / "qrnn_qiskit" / "engine").is_dir():
            parser.error(f"{root} is not a checkout of this repository (no qrnn_qiskit/engine in it).")
    if args.same_process:
        if len(roots) != 2:
            parser.error(f"--same-process compares two checkouts, a baseline and a change; got {len(roots)}.")
        _same_process(roots[0], roots[1], args.repeats, args.threads)
        return
    for root in roots:
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
