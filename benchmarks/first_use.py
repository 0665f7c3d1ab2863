"""First use: seconds from a fresh process with an empty kernel cache to the end of the first
training step of the Quickstart model, checkouts side by side.

Each round runs, per checkout, ``qrnn train --recipe digits01 --steps 1`` in a new process with
``NUMBA_CACHE_DIR`` set to a new empty folder (numba then compiles every kernel the step needs, as
in a new environment), then the same again with that cache filled (what every later run pays);
every other round in reverse order. Prints per checkout the medians over rounds of both wall
times, and the cold time's ratio to the first checkout's; also the cold run's CPU seconds (user +
system) and their ratio, steadier than the wall time where other machines share the cores. The process's own imports and the
data load are included: it is what a user waits for.

Usage: python benchmarks/first_use.py .
       git worktree add /tmp/before <commit>
       python benchmarks/first_use.py /tmp/before . [--rounds 2]
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
from pathlib import Path

from _shared import checkout_rounds, qrnn_in_checkout


def _run(root: str, cache: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and the process's CPU seconds (user + system). On this shared machine the wall
    time of one command varied by 1.3x from round to round; the CPU time, which does not count the
    time the process waited for a core, varies less and shows a change in compile work better."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = qrnn_in_checkout(root, ["train", "--recipe", "digits01", "--steps", "1", "--out", str(out), "--overwrite",
                                   "--json"], env={"NUMBA_CACHE_DIR": str(cache)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    roots, rounds = checkout_rounds(__doc__.splitlines()[0], 2)
    folder = Path(tempfile.mkdtemp(prefix="qrnn-first-use-"))
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
