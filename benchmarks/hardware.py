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
    finite = finite_shot_prediction(ck, subset, mode, args.backend, args.shots, args.seed)
    return {"ideal": ideal, "predicted_test": predicted, "aer": aer, "aer_seconds": round(aer_seconds, 1),
            "predicted_finite": finite}


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
        "predicted_kept_subset": None if "log10_expected_acceptance" not in sub else 10 ** sub["log10_expected_acceptance"],
        "measured_accuracy": aer.get("accuracy"), "measured_accuracy_sigma": aer.get("accuracy_sigma"),
        "measured_decided_accuracy": aer.get("decided_accuracy"), "kept": aer.get("acceptance"),
        "predicted_decided_at_aer_shots": figures.get("predicted_finite", {}).get("decided_accuracy"),
        "aer_error": aer.get("error"), "train_seconds": summary.get("seconds"), "aer_seconds": figures["aer_seconds"],
        "noise": (pred.get("noise") or {}).get("source"),
    }


def finite_shot_prediction(ck, subset: Dataset, mode: str, backend: str, shots: int, seed: int,
                           draws: int = 400) -> dict:
    """The engine's prediction of the majority vote with as many shots as Aer ran: per image,
    ``Binomial(shots, acceptance)`` kept shots drawn with the device meaning's distribution of the
    scored step, ``draws`` times (seeded); the image counts when the target is read strictly more
    often than any other outcome, among the images that kept a shot, as ``evaluate_shots`` decides."""
    from qrnn_qiskit.circuits.noise import noise_from_backend
    from qrnn_qiskit.engine import ExactEngine
    from qrnn_qiskit.engine.spec import EngineSpec

    spec = EngineSpec("cpu", "float64", mode, "measure", noise_from_backend(_backend(backend), ck.config,
                                                                              neuron_mode=mode))
    inputs, targets = subset.split("test").engine_arrays()
    result = ExactEngine(ck.config, spec).simulate(ck.parameters, inputs, targets, measure=[True] * inputs.shape[1])
    p, acceptance = result.probabilities[:, -1], result.neuron_acceptance.prod(axis=1)
    rng = np.random.default_rng(seed)
    decided, has = np.zeros((len(p), draws)), np.zeros((len(p), draws))
    for b in range(len(p)):
        kept = rng.binomial(shots, min(acceptance[b], 1.0), draws)
        counts = np.array([rng.multinomial(n, p[b] / p[b].sum()) for n in kept])
        target = targets[b, -1]
        decided[b] = counts[:, target] > np.delete(counts, target, axis=1).max(axis=1)
        has[b] = kept > 0
    # as evaluate_shots counts: over the images that kept a shot, in each draw of the whole subset
    per_draw = decided.sum(axis=0) / np.maximum(has.sum(axis=0), 1)
    return {"decided_accuracy": float(per_draw[has.sum(axis=0) > 0].mean()), "draws": draws, "shots": shots}


def collected_rows(out: Path) -> list[dict]:
    """The rows of every finished model under ``out``, rebuilt from its ``summary.json`` and
    ``figures.json`` (so a change of the row's fields needs no rerun)."""
    rows = []
    for task in TASKS:
        for size in SIZES:
            for meaning in MEANINGS:
                folder = out / task / size / meaning
                if (folder / "figures.json").is_file():
                    summary = json.loads((folder / "summary.json").read_text())
                    figures = json.loads((folder / "figures.json").read_text())
                    rows.append(row_of(task, size, meaning, summary, figures))
    return rows


def _complete_figures(args) -> None:
    """Add what a finished model's ``figures.json`` lacks (the finite-shot prediction)."""
    for task in TASKS:
        subset = None
        for size in SIZES:
            for meaning in MEANINGS:
                path = args.out / task / size / meaning / "figures.json"
                if not path.is_file():
                    continue
                figures = json.loads(path.read_text())
                if "predicted_finite" in figures:
                    continue
                subset = subset or SpreadTest(get_dataset(task, data_dir=args.data_dir), args.limit)
                ck = load_checkpoint(path.parent / "best.npz")
                figures["predicted_finite"] = finite_shot_prediction(ck, subset, MEANINGS[meaning]["neuron_mode"],
                                                                     args.backend, args.shots, args.seed)
                path.write_text(json.dumps(figures, indent=1) + "\n")


def _pct(value, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _or_dash(value) -> str:
    return "-" if value is None else str(value)


def table(rows: list[dict]) -> str:
    """The rows as a markdown table (one line per model)."""
    head = ("| task | size (W,S,k,d) | trained for | qubits | 2q gates | depth | ideal: shot / decided | "
            "predicted: shot / decided (at Aer's shots) | Aer: shot (+-sigma) / decided | kept (Aer / predicted) | s train / Aer |")
    lines = [head, "|---" * 11 + "|"]
    for r in rows:
        aer = "no shot kept" if r["aer_error"] else (f"{_pct(r['measured_accuracy'])} (+-{_pct(r['measured_accuracy_sigma'], 2)})"
                                                    f" / **{_pct(r['measured_decided_accuracy'])}**")
        lines.append(
            f"| {r['task']} | {r['size']} {tuple(r['config'])} | {r['trained_for']} | {_or_dash(r['qubits'])} "
            f"| {_or_dash(r['two_qubit_gates'])} | {_or_dash(r['depth'])} | {_pct(r['ideal_accuracy'])} / {_pct(r['ideal_decided_accuracy'])} "
            f"| {_pct(r['predicted_accuracy_subset'])} / {_pct(r['predicted_decided_subset'])} "
            f"({_pct(r['predicted_decided_at_aer_shots'])}) | {aer} "
            f"| {_pct(r['kept'])} / {_pct(r['predicted_kept_subset'])} | {r['train_seconds']:.0f} / {r['aer_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--table", action="store_true", help="print the finished rows as a markdown table, run nothing")
    args = parser.parse_args(argv)
    if args.table:
        _complete_figures(args)
        print(table(collected_rows(args.out)), end="")
        return 0
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
