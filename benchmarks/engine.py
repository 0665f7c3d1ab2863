"""Exact-engine speed and memory for the MNIST 0/1 model (I=2, W=8, S=2, k=2, d=2), per engine path.

Prints one JSON line per path (numpy, cpu, cpu-float32, and gpu / gpu-float32 where a CUDA device
answers), each measured in a fresh process:

* ``forward_s`` and ``forward_backward_s``: median of ``--repeats`` for one batch of 100
  sequences of length 100 (99 cell steps; loss on the last step, teacher forcing elsewhere);
* ``peak_mib``: the peak increase of the process's resident memory during one gradient pass
  (sampled every millisecond from /proc, so it counts numba's and numpy's allocations alike);
* ``compile_s``: the compiled paths' one-time cost, the first call in a process with an empty
  kernel cache minus a steady call; ``cache_load_s``: the same in a second process that finds
  the cache on disk;
* ``test_split_forward_s``: the whole mnist01 test split (2,115 sequences) forward in one call
  (the real split from ``--data-dir`` or the data cache when present, else random tokens of its
  shape; ``test_split_source`` says which), median of 3;
* ``build_s`` (numpy line only): the time to build the 99-step gate-level circuit.

Usage: python benchmarks/engine.py [--repeats 5] [--paths numpy,cpu,...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

MODEL = dict(input_width=2, workspace=8, stages=2, order=2, degree=2)
PATHS = {"numpy": ("numpy", "float64"), "cpu": ("cpu", "float64"), "cpu-float32": ("cpu", "float32"),
         "gpu": ("gpu", "float64"), "gpu-float32": ("gpu", "float32")}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_increase(fn) -> float:
    """Peak resident-memory increase (MiB) while ``fn`` runs."""
    base, peak, done = _rss(), [0], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    watcher = threading.Thread(target=poll)
    watcher.start()
    try:
        fn()
    finally:
        done.set()
        watcher.join()
    return max(0, max(peak[0], _rss()) - base) / 2**20


def _problem(batch: int, length: int):
    from qrnn_qiskit.core.config import QRNNConfig

    config = QRNNConfig(**MODEL)
    rng = np.random.default_rng(0)
    params = config.initial_parameters(weights_spread=0.0, seed=rng)
    steps = length - 1
    inputs = rng.integers(0, 4, (batch, steps))
    targets = np.zeros((batch, steps), dtype=np.int64)
    targets[:, -1] = rng.integers(0, 2, batch)
    scored = np.zeros(steps, dtype=bool)
    scored[-1] = True
    return config, params, inputs, targets, scored


def _test_split(data_dir):
    """The mnist01 test split's engine arrays, or random tokens of its shape."""
    try:
        from qrnn_qiskit.data.registry import get_dataset

        dataset = get_dataset("mnist01", data_dir=data_dir)
        inputs, targets = dataset.split("test").engine_arrays()
        return inputs, targets, "mnist01 test split"
    except Exception:  # no data here: the same shape, random tokens
        rng = np.random.default_rng(1)
        return rng.integers(0, 4, (2115, 99)), np.zeros((2115, 99), np.int64), "random tokens (no mnist01 data found)"


def measure(path: str, repeats: int, batch: int, length: int, data_dir) -> dict:
    """One path's figures, in this process (called in a fresh one by ``main``)."""
    from qrnn_qiskit.engine import ExactEngine

    engine_name, precision = PATHS[path]
    config, params, inputs, targets, scored = _problem(batch, length)
    engine = ExactEngine(config, engine=engine_name, precision=precision)
    start = time.perf_counter()
    engine.loss_and_gradient(params, inputs[:2], targets[:2], scored)
    engine.simulate(params, inputs[:2], targets[:2])
    first = time.perf_counter() - start

    def timed(fn, n=repeats) -> float:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return statistics.median(out)

    steady = timed(lambda: (engine.loss_and_gradient(params, inputs[:2], targets[:2], scored),
                            engine.simulate(params, inputs[:2], targets[:2])), 3)
    forward = timed(lambda: engine.loss(params, inputs, targets, scored))
    both = timed(lambda: engine.loss_and_gradient(params, inputs, targets, scored))
    peak = _peak_increase(lambda: engine.loss_and_gradient(params, inputs, targets, scored))
    split_inputs, split_targets, source = _test_split(data_dir)
    split = timed(lambda: engine.simulate(params, split_inputs, split_targets), 3)
    return {"first_call_s": first, "steady_small_s": steady, "forward_s": round(forward, 4),
            "forward_backward_s": round(both, 4), "peak_mib": round(peak, 1),
            "test_split_forward_s": round(split, 3), "test_split_sequences": int(split_inputs.shape[0]),
            "test_split_source": source}


def _child(path: str, args, cache_dir: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    cmd = [sys.executable, __file__, "--child", path, "--repeats", str(args.repeats), "--batch", str(args.batch),
           "--length", str(args.length)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gpu_present() -> bool:
    try:
        from qrnn_qiskit.engine.backends.cuda import require_gpu

        require_gpu()
        return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--paths", default=None, help="comma-separated subset of " + ",".join(PATHS))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.repeats, args.batch, args.length, args.data_dir)))
        return
    paths = args.paths.split(",") if args.paths else [p for p in PATHS if not p.startswith("gpu") or _gpu_present()]
    import numba

    for path in paths:
        with tempfile.TemporaryDirectory() as cache:
            cold = _child(path, args, cache)  # empty kernel cache: compiles
            warm = _child(path, args, cache) if path != "numpy" else cold  # finds the cache on disk
        line = {"benchmark": "engine", "path": path, "model": MODEL, "batch": args.batch,
                "cell_steps": args.length - 1, "repeats": args.repeats,
                **{k: warm[k] for k in ("forward_s", "forward_backward_s", "peak_mib", "test_split_forward_s",
                                         "test_split_sequences", "test_split_source")}}
        if path != "numpy":
            line["compile_s"] = round(cold["first_call_s"] - cold["steady_small_s"], 2)
            line["cache_load_s"] = round(warm["first_call_s"] - warm["steady_small_s"], 2)
        else:
            from qrnn_qiskit.circuits import qrnn_sequence
            from qrnn_qiskit.core.config import QRNNConfig

            t = time.perf_counter()
            qrnn_sequence(QRNNConfig(**MODEL), args.length - 1)
            line["build_s"] = round(time.perf_counter() - t, 3)
        line.update(python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
                    threads=numba.config.NUMBA_NUM_THREADS)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
