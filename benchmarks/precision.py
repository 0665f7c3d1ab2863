"""float32 against float64 on the reference mnist01 checkpoint; prints one JSON line.

On the whole mnist01 test split (2,115 images): the loss, expected accuracy, sampled accuracy
(same seed) and smallest postselection probability in both precisions, their differences, the
largest difference of any outcome probability, and the gradient difference on the first 200 test
images (largest absolute difference, and relative to the gradient's norm), with the times of both.

Usage: python benchmarks/precision.py [--checkpoint NPZ] [--data-dir DIR] [--engine cpu|gpu]
The default checkpoint and data are those of ``../shared`` (skipped cleanly without them).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _shared import add_model_options, load_model_or_skip

from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.evaluation.exact import evaluate_exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--engine", default="cpu")
    args = parser.parse_args()
    checkpoint = load_model_or_skip(args.checkpoint, "precision")
    config, params = checkpoint.config, checkpoint.parameters
    dataset = get_dataset("mnist01", data_dir=args.data_dir)
    figures, seconds = {}, {}
    for precision in ("float64", "float32"):
        start = time.perf_counter()
        figures[precision] = evaluate_exact(config, params, dataset, split="test", seed=0, engine=args.engine,
                                            precision=precision)
        seconds[precision] = round(time.perf_counter() - start, 2)
    inputs, targets = dataset.split("test").engine_arrays()
    scored = dataset.scored()
    grads, probs = {}, {}
    for precision in ("float64", "float32"):
        engine = ExactEngine(config, engine=args.engine, precision=precision)
        _, grads[precision], result = engine.loss_and_gradient(params, inputs[:200], targets[:200], scored)
        probs[precision] = engine.simulate(params, inputs, targets).probabilities
    g64, g32 = grads["float64"], grads["float32"]
    line = {"benchmark": "precision", "checkpoint": args.checkpoint, "engine": args.engine,
            "test_sequences": figures["float64"]["sequences"], "seconds": seconds}
    for key in ("loss", "expected_accuracy", "accuracy", "min_postselection_probability"):
        line[key] = {p: figures[p][key] for p in figures}
        line[key]["difference"] = figures["float32"][key] - figures["float64"][key]
    line["max_probability_difference"] = float(np.abs(probs["float32"] - probs["float64"]).max())
    line["gradient_max_abs_difference"] = float(np.abs(g32 - g64).max())
    line["gradient_relative_difference"] = float(np.linalg.norm(g32 - g64) / np.linalg.norm(g64))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
