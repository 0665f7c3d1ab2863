"""The GPU checks of one prepared run (a few minutes on one GPU); one JSON line per check.

1. ``gpu_engine``: the exact engine's GPU path against the CPU path on random small
   configurations (loss, gradient, distributions to 1e-10), then forward and forward+gradient of
   ``--sequences`` (default 10,000) MNIST 0/1 sequences of 99 steps, with the GPU's name, the
   compile time of the first call and the median of 3 after it; the CPU path's time on 200 of the
   same sequences beside it, scaled per sequence.
2. ``aer_gpu``: one mnist01 cell step sampled by Aer on the GPU (``device="GPU"``, the
   ``qiskit-aer-gpu`` package) and on the CPU: seconds per shot, accepted shots (all neurons
   succeeded) beside the engine's acceptance, and the largest z-score of the accepted shots'
   outcome frequencies against the engine's distribution.

Each check prints its line or an ``error`` line and the script goes on, so one failure does not
hide the others. Usage on a machine with an NVIDIA GPU:

    pip install '.[gpu]' qiskit-aer-gpu && python benchmarks/gpu.py [--sequences 10000] [--shots 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine

MNIST = QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2)


def _timed(fn, repeats=3) -> float:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def gpu_engine(sequences: int) -> dict:
    from numba import cuda

    worst = 0.0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        cfg = QRNNConfig(input_width=int(rng.integers(1, 4)), workspace=int(rng.integers(1, 6)),
                         stages=int(rng.integers(0, 3)), order=int(rng.integers(1, 4)), degree=2)
        params = rng.normal(0, 1, cfg.num_parameters)
        x = rng.integers(0, cfg.num_outcomes, (7, 6))
        y = rng.integers(0, cfg.num_outcomes, (7, 6))
        scored = rng.random(6) < 0.5
        scored[-1] = True
        a = ExactEngine(cfg).loss_and_gradient(params, x, y, scored)
        b = ExactEngine(cfg, engine="gpu").loss_and_gradient(params, x, y, scored)
        worst = max(worst, abs(a[0] - b[0]), float(np.abs(a[1] - b[1]).max()),
                    float(np.abs(a[2].probabilities - b[2].probabilities).max()))
    rng = np.random.default_rng(0)
    params = MNIST.initial_parameters(weights_spread=0.1, seed=1)
    inputs = rng.integers(0, 4, (sequences, 99))
    targets = np.zeros((sequences, 99), np.int64)
    targets[:, -1] = rng.integers(0, 2, sequences)
    scored = np.zeros(99, bool)
    scored[-1] = True
    gpu = ExactEngine(MNIST, engine="gpu")
    start = time.perf_counter()
    gpu.loss_and_gradient(params, inputs[:64], targets[:64], scored)
    gpu.loss(params, inputs[:64], targets[:64], scored)
    first = time.perf_counter() - start
    forward = _timed(lambda: gpu.loss(params, inputs, targets, scored))
    both = _timed(lambda: gpu.loss_and_gradient(params, inputs, targets, scored))
    cpu = ExactEngine(MNIST)
    cpu_both = _timed(lambda: cpu.loss_and_gradient(params, inputs[:200], targets[:200], scored), 1)
    g = cpu.loss_and_gradient(params, inputs[:200], targets[:200], scored)[1]
    h = gpu.loss_and_gradient(params, inputs[:200], targets[:200], scored)[1]
    return {"check": "gpu_engine", "gpu": cuda.get_current_device().name.decode() if isinstance(
                cuda.get_current_device().name, bytes) else str(cuda.get_current_device().name),
            "max_difference_small_configs": worst, "mnist_gradient_difference_200": float(np.abs(g - h).max()),
            "sequences": sequences, "cell_steps": 99, "first_call_s": round(first, 2),
            "forward_s": round(forward, 3), "forward_backward_s": round(both, 3),
            "cpu_forward_backward_s_per_sequence": round(cpu_both / 200, 5),
            "gpu_forward_backward_s_per_sequence": round(both / sequences, 6)}


def aer_gpu(shots: int) -> dict:
    from qrnn_qiskit.runners.aer import AerRunner

    # biases near -pi/2 put every neuron's angle near 0, where it succeeds almost surely, so
    # enough shots are accepted to compare their frequencies with the engine's
    params = MNIST.initial_parameters(weights_spread=0.3, seed=2)
    biases = [spec.bias_index for spec in MNIST.neurons]
    params[biases] = -np.pi / 2 + np.random.default_rng(4).normal(0, 0.3, len(biases))
    inputs, targets = np.array([[1]]), np.array([[0]])
    exact = ExactEngine(MNIST).simulate(params, inputs, targets)
    out = {"check": "aer_gpu", "model": "mnist01 cell, one step", "qubits": MNIST.num_qubits, "shots": shots}
    for device in ("CPU", "GPU"):
        try:
            runner = AerRunner(device=device, shots=shots, seed=3)
            start = time.perf_counter()
            result = runner.sample(MNIST, params, inputs)
        except Exception as exc:  # the CPU figures still count
            out[f"{device.lower()}_error"] = f"{type(exc).__name__}: {exc}"
            continue
        out[f"{device.lower()}_seconds_per_shot"] = round((time.perf_counter() - start) / shots, 5)
        accepted = result.accepted()[0]
        out[f"{device.lower()}_accepted_shots"] = int(accepted.sum())
        # outcome frequencies among accepted shots against the engine's distribution (z-scores)
        n = max(1, int(accepted.sum()))
        counts = np.bincount(result.tokens[0, accepted, 0], minlength=MNIST.num_outcomes)
        p = exact.probabilities[0, 0]
        sd = np.sqrt(np.maximum(p * (1 - p) / n, 1e-12))
        out[f"{device.lower()}_max_z"] = round(float(np.max(np.abs(counts / n - p) / sd)), 2)
    out["exact_neuron_acceptance"] = float(exact.neuron_acceptance[0, 0])
    out["exact_probabilities"] = [round(float(v), 4) for v in exact.probabilities[0, 0]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--shots", type=int, default=2000)
    args = parser.parse_args()
    for check in (lambda: gpu_engine(args.sequences), lambda: aer_gpu(args.shots)):
        try:
            line = check()
        except Exception as exc:  # report and go on: the next check may still run
            line = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
