"""Figures of models whose scored steps are decided by their most probable outcome: one model, or
an ensemble whose members' distributions are averaged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.data.base import Dataset, SequenceBatch
from qrnn_qiskit.models.registry import make_engine

__all__ = ["evaluate_decided", "evaluate_ensemble"]


def evaluate_ensemble(
    members: Sequence[tuple[QRNNConfig, np.ndarray]],
    dataset: Dataset,
    *,
    split: str = "test",
    batch: SequenceBatch | None = None,
    chunk: int = 4096,
    engine: str = "cpu",
    precision: str = "float64",
) -> dict:
    """An ensemble's figures: the members' output distributions averaged per step, decided as
    :func:`evaluate_decided` says.

    The paper does not say how its ensembles were combined: this is one faithful reading.

    Raises:
        ValueError: for fewer than two members, or members whose token width is not the dataset's.
    """
    if len(members) < 2:
        raise ValueError(f"An ensemble needs at least two members, got {len(members)}.")
    return {**evaluate_decided(members, dataset, split=split, batch=batch, chunk=chunk, engine=engine,
                               precision=precision),
            "members": len(members),
            "combination": "mean of the members' distributions per scored step; decided by the most probable outcome"}


def evaluate_decided(
    members: Sequence[tuple[QRNNConfig, np.ndarray]],
    dataset: Dataset,
    *,
    split: str = "test",
    batch: SequenceBatch | None = None,
    chunk: int = 4096,
    engine: str = "cpu",
    precision: str = "float64",
) -> dict:
    """One model's (or the mean of several models') figures when each scored step is decided by
    its most probable outcome instead of sampled.

    At every scored step each model gives its distribution over outcomes with the earlier steps
    postselected (unscored steps on their targets, scored ones on the decisions); their mean
    decides the step. ``accuracy`` counts sequences decided right at every scored step;
    ``word_accuracy`` counts scored words decided right (a later word never sees an earlier word's
    target); ``expected_accuracy`` is the probability that sampling the mean distribution at each
    scored step gets every word right.

    Raises:
        ValueError: for no model, or models whose token width is not the dataset's.
    """
    if not members:
        raise ValueError("evaluate_decided needs at least one model, got none.")
    for k, (config, _) in enumerate(members):
        if config.input_width != dataset.input_width:
            raise ValueError(
                f"Ensemble member {k} has input_width={config.input_width} but the dataset {dataset.name} has "
                f"{dataset.input_width}-bit tokens: members must share the dataset and input width."
            )
    data = batch if batch is not None else dataset.split(split)
    inputs, targets = data.engine_arrays()
    steps = np.flatnonzero(dataset.scored())
    engines = [(make_engine(config, engine=engine, precision=precision), params) for config, params in members]
    right = expected = words_right = 0.0
    for start in range(0, inputs.shape[0], chunk):
        y = targets[start : start + chunk]
        decided, p_right = _decide(engines, inputs[start : start + chunk], y, steps)
        hit = decided == y[:, steps]
        right += float(hit.all(axis=1).sum())
        words_right += float(hit.sum())
        expected += p_right
    total = inputs.shape[0]
    return {
        "dataset": dataset.name,
        "split": split if batch is None else "batch",
        "sequences": int(total),
        "accuracy": right / total,
        "expected_accuracy": expected / total,
        "word_accuracy": words_right / (total * steps.size),
    }


def _decide(engines, x: np.ndarray, y: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, float]:
    """The decisions at the scored ``steps`` of sequences ``x`` (the models' mean distribution's
    most probable outcome), and the summed probability of sampling every word right.

    Scored steps are decided in order, each with the earlier ones postselected on the decisions
    (not on the targets, which would tell a later word what an earlier one was)."""
    forced = y.copy()
    decided = np.empty((x.shape[0], steps.size), np.int64)
    expected = 0.0
    for j, t in enumerate(steps):
        mean = sum(engine.simulate(params, x, forced).probabilities for engine, params in engines) / len(engines)
        if j == 0:  # every step postselected on its target: the chance of getting every word right
            want_p = np.take_along_axis(mean[:, steps], y[:, steps][..., None], axis=2)[..., 0]
            expected = float(np.prod(want_p, axis=1).sum())
        decided[:, j] = mean[:, t].argmax(axis=1)
        forced[:, t] = decided[:, j]
    return decided, expected
