"""Digests of the exact engine's results, to show that a change leaves them bit for bit alone.

For the mnist01 model (I=2, W=8, S=2, k=2, d=2; 40 random sequences of 99 steps, loss on the last
step) and a small amplified model, prints one JSON line per engine path and precision with the
SHA-256 of the raw bytes of the loss, gradient, teacher-forced distributions and acceptances, and
of the outcomes and distributions of a sampled forward pass. Two trees give equal digests exactly
when they compute the same bits.

Usage: python benchmarks/fingerprint.py            (compare the output of two checkouts)
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from qrnn_qiskit import QRNNConfig
from qrnn_qiskit.engine import ExactEngine

CASES = {
    "mnist01": (dict(input_width=2, workspace=8, stages=2, order=2, degree=2), 40, 99,
                [("numpy", "float64", "postselect"), ("cpu", "float64", "postselect"), ("cpu", "float32", "postselect")]),
    "amplified": (dict(input_width=2, workspace=3, stages=1, order=2, degree=2), 12, 6,
                  [("numpy", "float64", "amplify:3")]),
}


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    for name, (model, batch, steps, paths) in CASES.items():
        config = QRNNConfig(**model)
        rng = np.random.default_rng(7)
        params = config.initial_parameters(bias_spread=0.3, weights_spread=0.3, unitaries_spread=0.3, seed=3)
        inputs = rng.integers(0, config.num_outcomes, (batch, steps))
        targets = np.zeros_like(inputs)
        targets[:, -1] = rng.integers(0, config.num_outcomes, batch)
        scored = np.zeros(steps, bool)
        scored[-1] = True
        sample = scored.copy()
        for path, precision, mode in paths:
            engine = ExactEngine(config, engine=path, precision=precision, neuron_mode=mode)
            loss, grad, result = engine.loss_and_gradient(params, inputs, targets, scored)
            sampled = engine.simulate(params, inputs, targets, sample=sample, seed=5)
            print(json.dumps({
                "case": name, "engine": path, "precision": precision, "neuron_mode": mode, "loss": loss,
                "loss_gradient": digest([loss], grad),
                "teacher_forced": digest(result.probabilities, result.neuron_acceptance),
                "sampled": digest(sampled.outcomes, sampled.probabilities, sampled.neuron_acceptance),
            }))


if __name__ == "__main__":
    main()
