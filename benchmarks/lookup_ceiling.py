"""What a lookup table scores on a labelled dataset: the ceiling of any model that sees only the tokens.

For every scored step, the table maps each training sequence's input prefix (the tokens the model
has read before that prediction) to the most frequent target among the training sequences with
that prefix; test prefixes never seen in training count as wrong. On the coarse all-digit
encodings (t-SNE, UMAP: a few bits per coordinate) many images share their input words, so this
bounds what the QRNN (or any classifier of these inputs) can reach, per label word and per image.
``word_accuracy`` / ``accuracy`` are the table learned on the training split; ``bound_*`` the
table learned on the test split itself, which no classifier of these inputs can beat there;
``word_accuracy_by_label`` is the first per class of the test split (to set beside
``reproduce.py``'s ``test_decided_by_label``). Prints one JSON line per dataset.

Usage: python benchmarks/lookup_ceiling.py [DATASET ...] [--data-dir DIR]
       (default: mnist-tsne-d2-r5 mnist-umap-d3-r5)
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict

import numpy as np
from _shared import MNIST_DATA

from qrnn_qiskit.data.registry import get_dataset


def _hits(x, y, xt, yt, steps) -> np.ndarray:
    """``(B_test, scored steps)``: the majority target of ``x``'s sequences with the same prefix is right."""
    hits = np.zeros((xt.shape[0], steps.size), bool)
    for j, t in enumerate(steps):
        table: dict = defaultdict(Counter)
        for prefix, target in zip(map(bytes, x[:, : t + 1].astype(np.int8)), y[:, t]):
            table[prefix][int(target)] += 1
        for b, (prefix, target) in enumerate(zip(map(bytes, xt[:, : t + 1].astype(np.int8)), yt[:, t])):
            seen = table.get(prefix)
            hits[b, j] = bool(seen) and seen.most_common(1)[0][0] == int(target)
    return hits


def ceiling(dataset, train: str = "train", test: str = "test") -> dict:
    """The lookup table learned on ``train`` scored on ``test`` (a classifier one can build), and
    the one learned on ``test`` itself (no classifier of these inputs can beat it on ``test``)."""
    x, y = dataset.split(train).engine_arrays()
    tested = dataset.split(test)
    xt, yt = tested.engine_arrays()
    steps = np.flatnonzero(dataset.scored())
    learned, oracle = _hits(x, y, xt, yt, steps), _hits(xt, yt, xt, yt, steps)
    by_label = {str(int(k)): float(learned[tested.labels == k].mean()) for k in np.unique(tested.labels)}
    return {"benchmark": "lookup_ceiling", "dataset": dataset.name, "train": train, "test": test,
            "test_sequences": int(xt.shape[0]), "scored_steps": int(steps.size),
            "word_accuracy": float(learned.mean()), "accuracy": float(learned.all(axis=1).mean()),
            "bound_word_accuracy": float(oracle.mean()), "bound_accuracy": float(oracle.all(axis=1).mean()),
            "word_accuracy_by_label": by_label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["mnist-tsne-d2-r5", "mnist-umap-d3-r5"])
    parser.add_argument("--data-dir", default=str(MNIST_DATA))
    args = parser.parse_args()
    for name in args.datasets:
        print(json.dumps(ceiling(get_dataset(name, data_dir=args.data_dir))), flush=True)


if __name__ == "__main__":
    main()
