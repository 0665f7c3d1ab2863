"""A paper-size QRNN run at the gate level: a pixel-by-pixel model (mnist01: 99 steps, 12 qubits;
digits01: 63 steps) in ``amplify:L`` mode with measured don't-care steps, sampled on Aer for one
test image; prints one JSON line.

It builds the whole bound circuit (``diagonal`` blocks, which Aer runs natively), samples ``--shots``
shots, keeps those whose every ancilla read 0 (the pixel steps' io outcomes are read and
ignored), and reports the accepted shots, the answers they read at the last step, and the exact
engine's figures for the same image and meaning (acceptance and answer distribution from
weighted trajectories), with the time of each part.

Usage: python benchmarks/amplify_aer.py [--checkpoint FILE] [--dataset mnist01|digits01] [--uses 5] [--shots 10]
       [--image 0] [--device CPU|GPU]
Defaults: the reference mnist01 checkpoint of ``../shared`` (imported on the fly); skipped cleanly
without it. Memory: Aer keeps every block's numbers per operation; with ``ucgate`` blocks (2**n
2x2 matrices each) the mnist01 circuit at amplify:5, 257,400 blocks of 512 matrices, does not fit
in this machine's 23 GB, so the default is ``diagonal`` blocks (one vector of 2**(n+1) phases).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _shared import add_model_options, load_model_or_skip

from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.exact import evaluate_exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--dataset", default="mnist01")
    parser.add_argument("--synthesis", default="diagonal", help="a numeric, Aer-native block: diagonal or ucgate")
    parser.add_argument("--uses", type=int, default=5)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--image", type=int, default=0, help="index in the test split")
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--trajectories", type=int, default=256, help="engine trajectories for the comparison")
    args = parser.parse_args()
    ck = load_model_or_skip(args.checkpoint, "amplify_aer")
    from qiskit_aer.primitives import SamplerV2

    from qrnn_qiskit.circuits import qrnn_sequence
    from qrnn_qiskit.runners.shots import shots_from_bits

    config, params = ck.config, ck.parameters
    mode = f"amplify:{args.uses}"
    dataset = get_dataset(args.dataset, data_dir=args.data_dir)
    batch = dataset.split("test").first(args.image + 1)
    inputs, targets = batch.engine_arrays()
    inputs, targets = inputs[-1:], targets[-1:]
    line = {"benchmark": "amplify_aer", "checkpoint": args.checkpoint, "dataset": args.dataset, "neuron_mode": mode,
            "image": args.image,
            "label_token": int(targets[0, -1]), "steps": int(inputs.shape[1]), "device": args.device}
    start = time.perf_counter()
    bits = config.token_to_bits(inputs[0]).reshape(-1).astype(float)
    circuit = qrnn_sequence(config, inputs.shape[1], weights=params, inputs=bits, neuron_mode=mode,
                             synthesis=args.synthesis)
    line["build_seconds"] = round(time.perf_counter() - start, 1)
    line["qubits"], line["operations"] = circuit.num_qubits, int(sum(circuit.count_ops().values()))
    sampler = SamplerV2(options={"backend_options": {"method": "statevector", "device": args.device},
                                 "run_options": {"seed_simulator": 7}})
    start = time.perf_counter()
    result = sampler.run([circuit], shots=args.shots).result()[0]
    line["sample_seconds"] = round(time.perf_counter() - start, 1)
    out = result.data.out.to_bool_array(order="little")
    flags = result.data.flag.to_bool_array(order="little")
    shots = shots_from_bits(config, out[None], flags[None], inputs.shape[1], mode)
    accepted = shots.neurons_ok.all(axis=2)[0]
    answers = shots.tokens[0, accepted, -1]
    line.update({"shots": args.shots, "accepted_shots": int(accepted.sum()),
                 "answers_of_accepted_shots": np.bincount(answers, minlength=config.num_outcomes).tolist()})
    start = time.perf_counter()
    line.update(_engine_figures(config, params, dataset, batch, args.image, mode, args.trajectories))
    line["engine_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(line), flush=True)


def _engine_figures(config, params, dataset, batch, image, mode, trajectories) -> dict:
    """The engine's acceptance and answer distribution for the last image of ``batch`` with
    measured don't-care steps (weighted trajectories), and its expected accuracy over ``batch``."""
    from qrnn_qiskit.engine import ExactEngine

    inputs, targets = batch.engine_arrays()
    x, y = np.repeat(inputs[-1:], trajectories, axis=0), np.repeat(targets[-1:], trajectories, axis=0)
    r = ExactEngine(config, neuron_mode=mode).simulate(params, x, y, sample=dataset.ignored(y), seed=image)
    log_w = np.log(r.neuron_acceptance).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    answer = (w[:, None] * r.probabilities[:, -1]).sum(axis=0) / w.sum()
    over_batch = evaluate_exact(config, params, dataset, batch=batch, neuron_mode=mode, unscored="measure",
                                trajectories=8)
    return {"engine_expected_acceptance": float(np.exp(log_w).mean()), "engine_answer_distribution": answer.tolist(),
            "engine_trajectories": trajectories, "engine_expected_accuracy_first_images": over_batch["expected_accuracy"]}


if __name__ == "__main__":
    main()
