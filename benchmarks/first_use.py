"""First use: seconds from a fresh process with an empty kernel cache to the end of the first
training step of the Quickstart model, checkouts side by side.

Each round runs, per checkout, ``qrnn train --recipe digits01 --steps 1`` in a new process with
``NUMBA_CACHE_DIR`` set to a new empty folder (numba then compiles every kernel the step needs, as
in a new environment), then the same again with that cache filled (what every later run pays);
every other round in reverse order. Prints per checkout the medians over rounds of both wall
times, and the cold time's ratio to the first checkout's; also the cold run's CPU seconds (user +
system) and their ratio, steadier than the wall time where other machines share the cores. The
process's own imports and the data load are included: it is what a user waits for.

With ``--instructions`` it instead counts, once per checkout, the instructions the cold run
executes, under valgrind's cachegrind (no cache simulation; about 20x slower): a count that does
not depend on what else the machine runs, where the same command's wall time varied by 1.3x from
round to round on this project's shared 2-core machine. It counts work, not waiting: a change
that saves instructions but stalls more would not show as slower here, so quote both figures.

Usage: python benchmarks/first_use.py .
       git worktree add /tmp/before <commit>
       python benchmarks/first_use.py /tmp/before . [--rounds 2]
       python benchmarks/first_use.py /tmp/before . --instructions
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _shared import checkout_rounds, qrnn_command, qrnn_in_checkout

COMMAND = ["train", "--recipe", "digits01", "--steps", "1", "--overwrite", "--json"]


def _run(root: str, cache: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and the process's CPU seconds (user + system). On this shared machine the wall
    time of one command varied by 1.3x from round to round; the CPU time, which does not count the
    time the process waited for a core, varies less and shows a change in compile work better."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = qrnn_in_checkout(root, [*COMMAND, "--out", str(out)], env={"NUMBA_CACHE_DIR": str(cache)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _instructions(root: str, folder: Path) -> int:
    """Instructions of one cold run of checkout ``root`` (an empty ``NUMBA_CACHE_DIR``), as
    cachegrind counts them; string hashing fixed (``PYTHONHASHSEED=0``) so that dict orders match."""
    cache, log = Path(tempfile.mkdtemp(dir=folder)), folder / "cachegrind.log"
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               f"--log-file={log}", *qrnn_command(root, [*COMMAND, "--out", str(folder / "run")])]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONHASHSEED": "0"})
    found = re.search(r"I\s+refs:\s+([\d,]+)", log.read_text() if log.exists() else "")
    if done.returncode != 0 or not found:
        raise SystemExit(f"{root}: the counted run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def count_instructions(roots: list[str], folder: Path) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH (apt install valgrind); "
                         "without it, compare wall and CPU seconds over --rounds.")
    counts = {root: _instructions(root, folder) for root in roots}
    for root in roots:
        print(json.dumps({
            "benchmark": "first-use-instructions", "checkout": root,
            "command": "qrnn train --recipe digits01 --steps 1 (new NUMBA_CACHE_DIR, valgrind cachegrind)",
            "instructions": counts[root], "ratio_vs_first": round(counts[root] / counts[roots[0]], 4),
        }), flush=True)


def main() -> None:
    counting = argparse.ArgumentParser(add_help=False)
    counting.add_argument("--instructions", action="store_true")
    known, sys.argv[1:] = counting.parse_known_args()
    roots, rounds = checkout_rounds(__doc__.splitlines()[0], 2)
    folder = Path(tempfile.mkdtemp(prefix="qrnn-first-use-"))
    if known.instructions:
        count_instructions(roots, folder)
        return
    cold: dict[str, list[float]] = {root: [] for root in roots}
    cold_cpu: dict[str, list[float]] = {root: [] for root in roots}
    warm: dict[str, list[float]] = {root: [] for root in roots}
    for round_index, order in enumerate(rounds):
        for root in order:
            cache = folder / f"cache-{round_index}-{roots.index(root)}"
            cache.mkdir()
            wall, cpu = _run(root, cache, folder / "run")
            cold[root].append(wall)
            cold_cpu[root].append(cpu)
            warm[root].append(_run(root, cache, folder / "run")[0])
    base = statistics.median(cold[roots[0]])
    base_cpu = statistics.median(cold_cpu[roots[0]])
    for root in roots:
        print(json.dumps({
            "benchmark": "first-use", "checkout": root,
            "command": "qrnn train --recipe digits01 --steps 1 (new NUMBA_CACHE_DIR)",
            "cold_s": round(statistics.median(cold[root]), 1), "cold_rounds_s": [round(t, 1) for t in cold[root]],
            "warm_s": round(statistics.median(warm[root]), 1),
            "cold_speedup_vs_first": round(base / statistics.median(cold[root]), 2),
            "cold_cpu_s": round(statistics.median(cold_cpu[root]), 1),
            "cold_cpu_speedup_vs_first": round(base_cpu / statistics.median(cold_cpu[root]), 2),
        }), flush=True)


if __name__ == "__main__":
    main()
