"""The whole ``qrnn build`` command, checkouts side by side: the 99-step mnist01 circuit to OpenQASM 3.

Each round runs the command once per checkout, each in a fresh process (imports, transpiler
plugins, building, the report with the synthesis comparison, the export: everything a user
waits for), every other round in reverse order so that the machine's drift falls on all alike.
Prints one JSON line per checkout: the median wall time over rounds, every round's time, the
ratio to the first checkout, and whether the OpenQASM files of all checkouts are byte-identical.

Usage: python benchmarks/build_command.py .                       # this checkout alone
       git worktree add /tmp/before <commit>
       python benchmarks/build_command.py /tmp/before . [--rounds 4]
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from _shared import checkout_rounds, qrnn_in_checkout

ARGS = ["build", "-I", "2", "-W", "8", "-S", "2", "-k", "2", "-d", "2", "-T", "99", "--json"]


def _run(root: str, output: Path) -> float:
    return qrnn_in_checkout(root, [*ARGS, "-o", str(output)])


def main() -> None:
    roots, rounds = checkout_rounds(__doc__.splitlines()[0], 4)
    folder = Path(tempfile.mkdtemp(prefix="qrnn-build-command-"))
    times: dict[str, list[float]] = {root: [] for root in roots}
    for round_index, order in enumerate(rounds):
        for root in order:
            times[root].append(_run(root, folder / f"{roots.index(root)}.qasm"))
    texts = {(folder / f"{i}.qasm").read_bytes() for i in range(len(roots))}
    base = statistics.median(times[roots[0]])
    for root in roots:
        median = statistics.median(times[root])
        print(json.dumps({
            "benchmark": "build-command", "checkout": root, "command": "qrnn " + " ".join(ARGS) + " -o FILE",
            "median_s": round(median, 2), "rounds_s": [round(t, 2) for t in times[root]],
            "speedup_vs_first": round(base / median, 2), "qasm_identical_across_checkouts": len(texts) == 1,
        }), flush=True)


if __name__ == "__main__":
    main()
