"""The hardware frontier: what QRNNs of growing size score on a device, trained for the ideal
meaning and for the device's; prints one JSON line per row and writes the run folder.

For every task and model size two models are trained on the exact engine:

* ``ideal``: the paper's meaning (postselected neurons, don't-care steps postselected on their
  targets, no noise);
* ``device``: the meaning of the circuits a device runs (neurons that keep every shot, every step
  measured, the noise of the backend read from its reported errors: the density path).

Each is then run as its circuits run on the device (ideal: postselect neurons, the shots whose
flags fail discarded; device: keep neurons) with every step measured, and reported:

* qubits, two-qubit gates and depth after routing on the backend (the whole sequence);
* ideal accuracy: the exact engine's in the meaning the model was trained for, no noise;
* predicted: the exact engine's under the device meaning with the backend's noise
  (``qrnn eval --backend fake_*`` prints the same before its cost gate);
* measured: the gate-level circuits on Aer under the fake backend's own full noise model, shots,
  every measurement as the circuit makes it; per shot (with its binomial sigma) and decided per
  image by the majority of its accepted shots;
* the fraction of shots kept, and the seconds of training and of the Aer run.

The Aer subset is ``--limit`` test images spread evenly over the split (both classes). Usage:

    python benchmarks/hardware.py [--tasks T ...] [--sizes S ...] [--steps N] [--shots N] [--limit N]
        [--backend fake_torino] [--data-dir DIR] [--out benchmarks/runs/hardware-frontier]

A finished row is not recomputed: rerun the command to continue after an interruption. Needs the
reference's MNIST feature files (``--data-dir``, default ``../shared/data/rvqe-mnist``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.data.base import Dataset, SequenceBatch
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.hardware import evaluate_on_backend, predict_on_device
from qrnn_qiskit.workflows.train import train

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rvqe-mnist"

# Two-class MNIST tasks of at most 3 steps (lookup-table ceilings on the test split, from the
# training split's token sequences: 97.9 % and 99.3 %; benchmarks/runs/hardware-frontier/README.md)
TASKS = {
    "mnist01-pca-r2-p2": "MNIST 0 vs 1, the top 2 bits of the first 2 principal components: 2 steps of 2 bits",
    "mnist36-umap-d2-r4": "MNIST 3 vs 6, the top 3 bits of 2-D supervised UMAP coordinates: 3 steps of 2 bits",
}
SIZES = {  # workspace, stages, order, degree
    "tiny": (1, 0, 1, 1),
    "small": (2, 1, 1, 1),
    "medium": (2, 1, 1, 2),
    "large": (3, 1, 1, 2),
}
MEANINGS = {  # trained for, and run as on the device
    "ideal": {"neuron_mode": "postselect", "unscored": "postselect", "noise": None},
    "device": {"neuron_mode": "keep", "unscored": "measure", "noise": None},  # noise: the backend's
}


class SpreadTest(Dataset):
    """A dataset whose test split is ``limit`` sequences spread evenly over the real one (a
    labelled split lists its classes one after another, so its first sequences are one class)."""

    def __init__(self, base: Dataset, limit: int) -> None:
        self.base, self.limit = base, limit
        self.name, self.input_width, self.sequence_length = base.name, base.input_width, base.sequence_length
        self.num_classes = base.num_classes

    def scored(self):
        return self.base.scored()

    def ignored(self, targets):
        return self.base.ignored(targets)

    def sampled(self, targets):
        return self.base.sampled(targets)

    def split(self, split: str) -> SequenceBatch:
        whole = self.base.split(split)
        pick = np.linspace(0, whole.inputs.shape[0] - 1, min(self.limit, whole.inputs.shape[0])).round().astype(int)
        return SequenceBatch(whole.inputs[pick], whole.targets[pick], whole.labels[pick])


def train_model(task: str, size: str, meaning: str, args, folder: Path) -> dict:
    """Train (or reuse) one model; its run summary."""
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        return json.loads(summary_path.read_text())
    w, s, order, degree = SIZES[size]
    options = dict(MEANINGS[meaning])
    if meaning == "device":
        options["noise"] = args.backend
    settings = TrainSettings(
        dataset=task, data_dir=str(args.data_dir), workspace=w, stages=s, order=order, degree=degree,
        batch_size=args.batch_size, optimizer="adam", learning_rate=args.learning_rate, steps=args.steps,
        validate_every=args.validate_every, validation_size=args.validation_size, seed=args.seed,
        initial_bias_spread=0.1, initial_weights_spread=0.1, initial_unitaries_spread=0.1, **options,
    )
    summary = train(settings, folder, callbacks=[])
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def measure_model(ck, dataset: Dataset, subset: Dataset, meaning: str, args) -> dict:
    """Ideal, predicted and Aer-measured figures of one trained model."""
    mode = MEANINGS[meaning]["neuron_mode"]
    ideal = evaluate_exact(ck.config, ck.parameters, dataset, split="test", seed=args.seed, neuron_mode=mode,
                           unscored=MEANINGS[meaning]["unscored"])
    predicted = predict_on_device(ck.config, ck.parameters, dataset, _backend(args.backend), split="test",
                                  neuron_mode=mode, unscored="measure", seed=args.seed)
    started = time.perf_counter()
    try:
        aer = evaluate_on_backend(ck, subset, args.backend, split="test", shots=args.shots, neuron_mode=mode,
                                  seed=args.seed, unscored="measure")
    except QRNNError as exc:  # no shot accepted at all
        aer = {"error": str(exc)}
    aer_seconds = time.perf_counter() - started
    return {"ideal": ideal, "predicted_test": predicted, "aer": aer, "aer_seconds": round(aer_seconds, 1)}


def _backend(name: str):
    from qrnn_qiskit.circuits.targets import resolve_target

    return resolve_target(name).backend


def row_of(task: str, size: str, meaning: str, summary: dict, figures: dict) -> dict:
    aer, ideal, pred = figures["aer"], figures["ideal"], figures["predicted_test"]
    sub = aer.get("predicted", {})
    return {
        "task": task, "size": size, "trained_for": meaning, "config": SIZES[size],
        "qubits": aer.get("qubits"), "two_qubit_gates": aer.get("two_qubit_gates"), "depth": aer.get("depth"),
        "ideal_accuracy": ideal["expected_accuracy"], "ideal_decided_accuracy": ideal["decided_accuracy"],
        "predicted_accuracy_test": pred.get("expected_accuracy"), "predicted_decided_test": pred.get("decided_accuracy"),
        "predicted_kept_test": None if "log10_expected_acceptance" not in pred else 10 ** pred["log10_expected_acceptance"],
        "aer_images": aer.get("sequences"), "aer_shots_per_image": aer.get("shots"),
        "predicted_accuracy_subset": sub.get("expected_accuracy"), "predicted_decided_subset": sub.get("decided_accuracy"),
        "measured_accuracy": aer.get("accuracy"), "measured_accuracy_sigma": aer.get("accuracy_sigma"),
        "measured_decided_accuracy": aer.get("decided_accuracy"), "kept": aer.get("acceptance"),
        "aer_error": aer.get("error"), "train_seconds": summary.get("seconds"), "aer_seconds": figures["aer_seconds"],
        "noise": (pred.get("noise") or {}).get("source"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--backend", default="fake_torino")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.03)
    parser.add_argument("--validate-every", type=int, default=25)
    parser.add_argument("--validation-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shots", type=int, default=500)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/runs/hardware-frontier"))
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(json.dumps({"benchmark": "hardware", "skipped": f"no MNIST feature files at {args.data_dir}"}))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    done = {(r["task"], r["size"], r["trained_for"]) for r in map(json.loads, rows_path.read_text().splitlines())} \
        if rows_path.is_file() else set()
    for task in args.tasks:
        dataset = get_dataset(task, data_dir=args.data_dir)
        subset = SpreadTest(dataset, args.limit)
        for size in args.sizes:
            for meaning in MEANINGS:
                if (task, size, meaning) in done:
                    continue
                folder = args.out / task / size / meaning
                summary = train_model(task, size, meaning, args, folder)
                figures = measure_model(load_checkpoint(folder / "best.npz"), dataset, subset, meaning, args)
                (folder / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
                row = row_of(task, size, meaning, summary, figures)
                with rows_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
