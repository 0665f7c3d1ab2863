"""Reproduce a paper task with the reference settings; prints one JSON line.

Usage:
    python benchmarks/reproduce.py TASK [--steps N] [--timeout S] [--seed N] [--data-dir DIR] [--out DIR]
    python benchmarks/reproduce.py TASK --seeds 1-4 [--max-concurrent 2] --out DIR   (one ``qrnn sweep``)
    python benchmarks/reproduce.py TASK --evaluate RUN [RUN ...] [--out DIR]          (no training)

With ``--seeds`` the seeds train as one sweep (in parallel on Ray with ``--max-concurrent``; rerun
the same command to continue it); with ``--evaluate`` the best checkpoints of finished run folders
are evaluated. Either way every member's best checkpoint is evaluated on the full test split and
the JSON holds each member's figures, their mean and standard deviation over seeds (ddof 1) and,
with two or more members, the ensemble's (the members' distributions averaged per step); it is
also written to ``DIR/reproduce.json``. Members are scored as the reference does (sampled outcomes)
and, like the ensemble, decided by their most probable outcome (``test_decided_*``); on the image
sets also per class (``test_decided_by_label``).

TASK is one of: simple-seq, dna, mnist01, mnist01-drop390, mnist36, mnist36-ds, tsne, umap, digits01, digits01-w8.
Fields: steps, seconds, seconds_per_step, best_validation_loss, stopped, and the exact engine's
test figures (accuracy sampled as the reference does, expected_accuracy, loss).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from pathlib import Path

import numpy as np

from qrnn_qiskit.data.base import SequenceBatch
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.decided import evaluate_decided, evaluate_ensemble
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.training.plot import read_metrics
from qrnn_qiskit.training.recipes import RECIPES
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.sweep import sweep
from qrnn_qiskit.workflows.train import train

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rvqe-mnist"

# The recipes live in the package (qrnn_qiskit.training.recipes; `qrnn recipes` lists them).
TASKS = {name: recipe["settings"] for name, recipe in RECIPES.items()}


def _options(args) -> dict:
    options = dict(TASKS[args.task])
    for key in ("seed", "steps", "timeout"):
        if getattr(args, key) is not None:  # seed 0 is a seed
            options[key] = getattr(args, key)
    if options.get("timeout") == 0:  # --timeout 0: no limit, also where the recipe sets one
        options["timeout"] = None
    if options["dataset"].startswith("mnist"):
        options["data_dir"] = args.data_dir
    return options


def _member(folder: Path, dataset) -> tuple[dict, object]:
    """One run folder's best checkpoint on the full test split (its figures, and the checkpoint)."""
    path = folder / "best.npz"
    if not path.is_file():
        raise SystemExit(f"{folder} has no best.npz: pass finished run folders of `qrnn train` (or a sweep's trials).")
    best = load_checkpoint(path)
    test = evaluate_exact(best.config, best.parameters, dataset, split="test", seed=0)
    decided = evaluate_decided([(best.config, best.parameters)], dataset, split="test")  # as an ensemble decides
    settings = json.loads((folder / "config.json").read_text())["settings"]
    records = read_metrics(folder)
    figures = {"run": str(folder), "seed": settings["seed"], "best_step": best.meta.get("step"),
               "steps": records[-1]["step"], "seconds": records[-1]["seconds"],
               "best_validation_loss": min(r["validation_loss"] for r in records), "test_accuracy": test["accuracy"],
               "test_expected_accuracy": test["expected_accuracy"], "test_word_accuracy": test["word_accuracy"],
               "test_decided_accuracy": decided["accuracy"], "test_decided_word_accuracy": decided["word_accuracy"],
               "test_loss": test["loss"], "test_sequences": test["sequences"]}
    if dataset.num_classes:
        figures["test_decided_by_label"] = _by_label(best, dataset)
    return figures, best


def _by_label(best, dataset) -> dict:
    """Decided figures per class of the test split: where a model that falls short loses its words."""
    data = dataset.split("test")
    figures = {}
    for label in np.unique(data.labels):
        keep = data.labels == label
        part = SequenceBatch(data.inputs[keep], data.targets[keep], data.labels[keep])
        decided = evaluate_decided([(best.config, best.parameters)], dataset, batch=part)
        figures[str(int(label))] = {"images": int(keep.sum()), "accuracy": decided["accuracy"],
                                    "word_accuracy": decided["word_accuracy"]}
    return figures


def _spread(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {"mean": mean, "std": statistics.stdev(values) if len(values) > 1 else None, "n": len(values)}


def evaluate_members(task: str, folders: list[Path], options: dict) -> dict:
    """Each member's test figures, their mean and spread over seeds, and the ensemble's."""
    dataset = get_dataset(options["dataset"], sentence_length=options.get("sentence_length"), data_dir=options.get("data_dir"))
    members, checkpoints = zip(*(_member(Path(f), dataset) for f in folders))
    result = {"task": task, "dataset": dataset.name, "split": "test", "members": list(members)}
    for key in ("test_accuracy", "test_expected_accuracy", "test_word_accuracy", "test_decided_accuracy",
                "test_decided_word_accuracy"):
        result[key] = _spread([m[key] for m in members])
    if len(members) > 1:
        result["ensemble"] = evaluate_ensemble([(c.config, c.parameters) for c in checkpoints], dataset, split="test")
    return result


def _single(args, options: dict, out: Path) -> dict:
    summary = train(TrainSettings(**options), out)
    best = load_checkpoint(summary["checkpoints"]["best"])
    dataset = get_dataset(options["dataset"], sentence_length=options.get("sentence_length"), data_dir=options.get("data_dir"))
    test = evaluate_exact(best.config, best.parameters, dataset, split="test", seed=0)
    return {
        "task": args.task,
        "seed": options["seed"],
        "steps": summary["steps"],
        "seconds": summary["seconds"],
        "seconds_per_step": summary["seconds_per_step"],
        "best_validation_loss": summary["best_validation_loss"],
        "best_step": best.meta.get("step"),
        "stopped": summary["stopped"],
        "test_accuracy": test["accuracy"],
        "test_expected_accuracy": test["expected_accuracy"],
        "test_word_accuracy": test["word_accuracy"],
        "test_loss": test["loss"],
        "reached_1e-3": summary["best_validation_loss"] < 1e-3 if math.isfinite(summary["best_validation_loss"]) else False,
        "out": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--timeout", type=float, help="seconds of training at most (0: no limit; mnist01's recipe: 600)")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, help="training seed (default: the task's)")
    parser.add_argument("--seeds", help="train these seeds as one sweep (e.g. 1-4) and evaluate them together")
    parser.add_argument("--max-concurrent", type=int, help="seeds trained at once (Ray) with --seeds")
    parser.add_argument("--evaluate", nargs="+", metavar="RUN", help="evaluate these finished run folders; no training")
    args = parser.parse_args()
    options = _options(args)
    if args.evaluate:
        result = evaluate_members(args.task, [Path(f) for f in args.evaluate], options)
    elif args.seeds:
        if not args.out:
            parser.error("--seeds needs --out (the sweep's folder, to continue it by rerunning the command)")
        table = sweep(TrainSettings(**options), args.out, seeds=args.seeds, max_concurrent=args.max_concurrent)
        unfinished = [row["trial"] for row in table["trials"] if row["stopped"] == "unfinished"]
        if unfinished:
            raise SystemExit(f"trials {unfinished} did not finish; rerun the same command to continue them.")
        result = evaluate_members(args.task, [Path(args.out) / row["trial"] for row in table["trials"]], options)
    else:
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f"qrnn-{args.task}-"))
        print(json.dumps(_single(args, options, out)))
        return
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "reproduce.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
