"""First use: seconds from a fresh process with an empty kernel cache to the end of the first
training step of the Quickstart model, checkouts side by side.

Each round runs, per checkout, ``qrnn train --recipe digits01 --steps 1`` in a new process with
``NUMBA_CACHE_DIR`` set to a new empty folder (numba then compiles every kernel the step needs, as
in a new environment), then the same again with that cache filled (what every later run pays);
every other round in reverse order. Prints per checkout the medians over rounds of both wall
times, and the cold time's ratio to the first checkout's. The process's own imports and the
data load are included: it is what a user waits for.

Usage: python benchmarks/first_use.py .
       git worktree add /tmp/before <commit>
       python benchmarks/first_use.py /tmp/before . [--rounds 2]
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from _shared import checkout_rounds, qrnn_in_checkout


def _run(root: str, cache: Path, out: Path) -> float:
    return qrnn_in_checkout(root, ["train", "--recipe", "digits01", "--steps", "1", "--out", str(out), "--overwrite",
                                   "--json"], env={"NUMBA_CACHE_DIR": str(cache)})


def main() -> None:
    roots, rounds = checkout_rounds(__doc__.splitlines()[0], 2)
    folder = Path(tempfile.mkdtemp(prefix="qrnn-first-use-"))
    cold: dict[str, list[float]] = {root: [] for root in roots}
    warm: dict[str, list[float]] = {root: [] for root in roots}
    for round_index, order in enumerate(rounds):
        for root in order:
            cache = folder / f"cache-{round_index}-{roots.index(root)}"
            cache.mkdir()
            cold[root].append(_run(root, cache, folder / "run"))
            warm[root].append(_run(root, cache, folder / "run"))
    base = statistics.median(cold[roots[0]])
    for root in roots:
        print(json.dumps({
            "benchmark": "first-use", "checkout": root,
            "command": "qrnn train --recipe digits01 --steps 1 (new NUMBA_CACHE_DIR)",
            "cold_s": round(statistics.median(cold[root]), 1), "cold_rounds_s": [round(t, 1) for t in cold[root]],
            "warm_s": round(statistics.median(warm[root]), 1),
            "cold_speedup_vs_first": round(base / statistics.median(cold[root]), 2),
        }), flush=True)


if __name__ == "__main__":
    main()
