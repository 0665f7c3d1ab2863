"""Evaluation on the exact engine, measured as the reference does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import QRNNConfig
from ..models import make_engine
from ..engine.exact import _reference_loss
from .datasets import Dataset, SequenceBatch

__all__ = ["evaluate_exact", "evaluate_ensemble"]


def evaluate_exact(
    config: QRNNConfig,
    parameters: np.ndarray,
    dataset: Dataset,
    *,
    split: str = "test",
    batch: SequenceBatch | None = None,
    chunk: int = 4096,
    seed: int | np.random.Generator | None = 0,
    engine: str = "cpu",
    precision: str = "float64",
) -> dict:
    """Loss and accuracy of a model on a whole split (or on ``batch``).

    ``accuracy`` samples the io measurement at scored steps (except the dataset's "don't care"
    steps) and postselects every other step on its target, then counts sequences whose scored
    words all match (digest 3.2, 7.9).
    ``expected_accuracy`` is the exact probability of that event, averaged over sequences.
    ``character_error_rate`` is the fraction of scored words sampled wrong (``word_accuracy`` is one
    minus it: the paper's all-digit figures are per label word); ``loss`` the reference
    loss under teacher forcing; ``min_postselection_probability`` the smallest probability of a
    teacher-forced target. ``engine`` and ``precision`` choose the exact engine's path.
    """
    if dataset.input_width != config.input_width:
        raise ValueError(
            f"The dataset {dataset.name} has {dataset.input_width}-bit tokens but the model has "
            f"input_width={config.input_width}."
        )
    engine = make_engine(config, engine=engine, precision=precision)
    rng = np.random.default_rng(seed)
    data = batch if batch is not None else dataset.split(split)
    inputs, targets = data.engine_arrays()
    scored = dataset.scored()
    total = inputs.shape[0]
    loss_sum = correct = expected = wrong_words = 0.0
    min_post = 1.0
    for start in range(0, total, chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        n = x.shape[0]
        forced = engine.simulate(parameters, x, y)
        loss_sum += _reference_loss(forced.probabilities, y, scored, config.input_width)[0] * n
        expected += float(np.prod(forced.outcome_probability[:, scored], axis=1).sum())
        min_post = min(min_post, forced.min_postselection_probability)
        sampled = engine.simulate(parameters, x, y, sample=dataset.sampled(y), seed=rng)
        hits = sampled.outcomes[:, scored] == y[:, scored]
        correct += float(hits.all(axis=1).sum())
        wrong_words += float((~hits).sum())
    words = total * int(scored.sum())
    return {
        "dataset": dataset.name,
        "split": split if batch is None else "batch",
        "sequences": int(total),
        "loss": loss_sum / total,
        "accuracy": correct / total,
        "expected_accuracy": expected / total,
        "character_error_rate": wrong_words / words,
        "word_accuracy": 1.0 - wrong_words / words,  # the paper's all-digit figures count label words
        "min_postselection_probability": min_post,
    }


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
    """An ensemble's figures: the members' output distributions averaged per step.

    At every scored step each member gives its distribution over outcomes with the earlier steps
    postselected on their targets; the ensemble's distribution is their mean. ``accuracy`` counts
    sequences whose most probable outcome is the target at every scored step (how an ensemble
    decides); ``expected_accuracy`` is the probability that sampling the averaged distribution at
    each scored step gets every word right; ``word_accuracy`` counts scored words decided right.
    The paper does not say how its ensembles were combined: this is one faithful reading.

    Raises:
        ValueError: for fewer than two members, or members whose token width is not the dataset's.
    """
    if len(members) < 2:
        raise ValueError(f"An ensemble needs at least two members, got {len(members)}.")
    for k, (config, _) in enumerate(members):
        if config.input_width != dataset.input_width:
            raise ValueError(
                f"Ensemble member {k} has input_width={config.input_width} but the dataset {dataset.name} has "
                f"{dataset.input_width}-bit tokens: members must share the dataset and input width."
            )
    data = batch if batch is not None else dataset.split(split)
    inputs, targets = data.engine_arrays()
    scored = dataset.scored()
    engines = [(make_engine(config, engine=engine, precision=precision), params) for config, params in members]
    right = expected = words_right = 0.0
    for start in range(0, inputs.shape[0], chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        mean = sum(engine.simulate(params, x, y).probabilities for engine, params in engines) / len(engines)
        probs = mean[:, scored]  # (b, scored steps, outcomes)
        want = y[:, scored]
        hit = probs.argmax(axis=2) == want
        right += float(hit.all(axis=1).sum())
        words_right += float(hit.sum())
        expected += float(np.prod(np.take_along_axis(probs, want[..., None], axis=2)[..., 0], axis=1).sum())
    total = inputs.shape[0]
    return {
        "dataset": dataset.name,
        "split": split if batch is None else "batch",
        "sequences": int(total),
        "members": len(members),
        "accuracy": right / total,
        "expected_accuracy": expected / total,
        "word_accuracy": words_right / (total * int(scored.sum())),
        "combination": "mean of the members' distributions per scored step; decided by the most probable outcome",
    }
