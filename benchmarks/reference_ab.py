"""The reference PyTorch implementation and this engine side by side on the mnist01 benchmark.

One "epoch" of the reference is what ``benchmarks/engine.py`` times for this engine: 100
sequences of 100 tokens (99 cell steps) of the mnist01 model (I=2, W=8, S=2, k=2, d=2), every
step postselected on its target (the reference's ``postselect_measurement=True``, as its
``main.py`` trains), the loss on the last step, and one backward pass. The reference is imported
from a checkout of github.com/CLEconomides/RVQE (commit 400a5eb, the code the paper's results
came from); nothing of it is copied here. Each round runs both in fresh processes, the order
reversed every other round, with the same thread count for both (``--threads``: torch's
``set_num_threads`` and ``NUMBA_NUM_THREADS``; default: each library's own default, which is every
core). Prints one JSON line: the medians over rounds of the reference's seconds per epoch and this
engine's forward + gradient, and their ratio.

Without a reference checkout it prints one JSON line saying it is skipped, and exits 0.

Usage: git clone https://github.com/CLEconomides/RVQE /tmp/RVQE && git -C /tmp/RVQE checkout 400a5eb
       python benchmarks/reference_ab.py --reference /tmp/RVQE [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFERENCE_CHILD = """
import contextlib, importlib.util, io, json, statistics, sys, time, types
import numpy as np
import torch
sys.path.insert(0, {reference!r})
# the reference's package imports its dataset modules, which import colorful (terminal colours) and
# pandas (CSV reading); the model uses neither, so an empty stand-in does where they are missing
for name in ("colorful", "pandas"):
    if importlib.util.find_spec(name) is None:
        sys.modules[name] = types.ModuleType(name)
from RVQE.model import RVQE
if {threads}:
    torch.set_num_threads({threads})
rng = np.random.default_rng(0)
with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its sizes when built
    model = RVQE(workspace_size=8, input_size=2, stages=2, order=2, degree=2)
tokens = rng.integers(0, 4, (100, 100))
bits = torch.tensor(np.stack([(tokens >> 1) & 1, tokens & 1], axis=-1), dtype=torch.long)
criterion = torch.nn.CrossEntropyLoss()
times = []
for _ in range({repeats}):
    model.zero_grad()
    start = time.perf_counter()
    probs, _, _ = model(bits, bits, postselect_measurement=True)
    loss = criterion(probs[:, :, -1:], torch.tensor(tokens[:, -1:]))
    loss.backward()
    times.append(time.perf_counter() - start)
print(json.dumps({{"reference_epoch_s": statistics.median(times), "threads": torch.get_num_threads()}}))
"""

ENGINE_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/benchmarks")
import numba
from engine import _problem
from qrnn_qiskit.engine import ExactEngine
config, params, inputs, targets, scored = _problem(100, 100)
engine = ExactEngine(config, engine="cpu")
engine.loss_and_gradient(params, inputs, targets, scored)
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    engine.loss_and_gradient(params, inputs, targets, scored)
    times.append(time.perf_counter() - start)
print(json.dumps({{"engine_forward_backward_s": statistics.median(times), "threads": numba.get_num_threads()}}))
"""


def _child(code: str, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"A benchmark process failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=os.environ.get("RVQE_CHECKOUT", "/tmp/RVQE"),
                        help="a checkout of CLEconomides/RVQE (default: $RVQE_CHECKOUT or /tmp/RVQE)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reference-repeats", type=int, default=1, help="reference epochs per process")
    parser.add_argument("--repeats", type=int, default=7, help="engine passes per process")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: each library's own)")
    args = parser.parse_args()
    reference = Path(args.reference).resolve()
    if not (reference / "RVQE" / "model.py").is_file():
        print(json.dumps({"benchmark": "reference_ab", "skipped": f"no RVQE checkout at {reference} "
                          "(clone github.com/CLEconomides/RVQE there and check out 400a5eb)"}))
        return
    ref_code = REFERENCE_CHILD.format(reference=str(reference), threads=args.threads or 0,
                                      repeats=args.reference_repeats)
    eng_code = ENGINE_CHILD.format(root=str(ROOT), repeats=args.repeats)
    _child(eng_code, args.threads)  # compile (or load) the kernels outside the measured rounds
    ref, eng, threads = [], [], {}
    for round_ in range(args.rounds):
        order = [("reference", ref_code), ("engine", eng_code)]
        for name, code in order if round_ % 2 == 0 else order[::-1]:
            result = _child(code, args.threads)
            threads[name] = result["threads"]
            (ref if name == "reference" else eng).append(result.get("reference_epoch_s",
                                                                    result.get("engine_forward_backward_s")))
    ref_s, eng_s = statistics.median(ref), statistics.median(eng)
    print(json.dumps({"benchmark": "reference_ab", "rounds": args.rounds, "threads": threads,
                      "reference_epoch_s": round(ref_s, 3), "engine_forward_backward_s": round(eng_s, 4),
                      "ratio": round(ref_s / eng_s, 1), "reference": str(reference)}))


if __name__ == "__main__":
    main()
