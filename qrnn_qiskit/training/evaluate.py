"""Evaluation on the exact engine, measured as the reference does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qrnn_qiskit.baselines import check_loss
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine.exact import _reference_loss
from qrnn_qiskit.models import make_engine
from qrnn_qiskit.training.datasets import Dataset, SequenceBatch

__all__ = ["UNSCORED", "check_unscored", "evaluate_decided", "evaluate_exact", "evaluate_ensemble",
           "postselected_log_acceptance"]


UNSCORED = ("postselect", "measure")


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
    neuron_mode: str = "postselect",
    unscored: str = "postselect",
    trajectories: int = 1,
    loss: str = "reference",
) -> dict:
    """Loss and accuracy of a model on a whole split (or on ``batch``).

    ``accuracy`` samples the io measurement at scored steps (except the dataset's "don't care"
    steps) and postselects every other step on its target, then counts sequences whose scored
    words all match (digest 3.2, 7.9).
    ``expected_accuracy`` is the exact probability of that event, averaged over sequences.
    ``character_error_rate`` is the fraction of scored words sampled wrong (``word_accuracy`` is one
    minus it: the paper's all-digit figures are per label word); ``loss`` the reference
    loss under teacher forcing (with ``loss="cross-entropy"``, ``-log p[target]`` averaged over the
    scored steps: a classical baseline's training loss); ``min_postselection_probability`` the smallest probability of a
    teacher-forced target. ``engine`` and ``precision`` choose the exact engine's path;
    ``neuron_mode`` (``postselect`` or ``amplify:L``) what the neurons compute.

    ``unscored`` says what happens at the "don't care" steps: ``postselect`` (the reference's
    evaluation: the io outcome must equal the target, a condition on the shot) or ``measure``
    (hardware's way: the io lanes are measured and the run continues with whatever was read). Under
    ``measure`` the workspace continues in a mixture, which the engine follows by sampled
    trajectories (``trajectories`` per sequence), each weighted by the probability that its
    neurons all succeed, so the figures are those of accepted shots. ``log10_expected_acceptance``
    is the probability that a shot of the whole circuit is accepted (neurons, and the postselected
    don't-care steps under ``postselect``), averaged over sequences.
    """
    _check_options(config, dataset, unscored, trajectories)
    check_loss(loss)
    engine = make_engine(config, engine=engine, precision=precision, neuron_mode=neuron_mode)
    rng = np.random.default_rng(seed)
    data = batch if batch is not None else dataset.split(split)
    inputs, targets = data.engine_arrays()
    scored = dataset.scored()
    total = inputs.shape[0]
    sums = dict(loss=0.0, correct=0.0, expected=0.0, wrong=0.0)
    log_acceptance = []
    min_post = 1.0
    for start in range(0, total, chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        n = x.shape[0]
        forced = engine.simulate(parameters, x, y)
        sums["loss"] += _batch_loss(forced.probabilities, y, scored, loss, config.input_width) * n
        min_post = min(min_post, forced.min_postselection_probability)
        if unscored == "postselect":
            _postselected_figures(engine, parameters, dataset, x, y, forced, rng, sums, log_acceptance)
        else:
            _measured_figures(engine, parameters, dataset, x, y, trajectories, rng, sums, log_acceptance)
    words = total * int(scored.sum())
    log_acc = np.concatenate(log_acceptance)
    result = {
        "dataset": dataset.name,
        "split": split if batch is None else "batch",
        "sequences": int(total),
        "loss": sums["loss"] / total,
        "accuracy": sums["correct"] / total,
        "expected_accuracy": sums["expected"] / total,
        "character_error_rate": sums["wrong"] / words,
        "word_accuracy": 1.0 - sums["wrong"] / words,  # the paper's all-digit figures count label words
        "min_postselection_probability": min_post,
        "neuron_mode": str(getattr(engine, "neuron_mode", "postselect")),
        "unscored": unscored,
        "log10_expected_acceptance": float((np.logaddexp.reduce(log_acc) - np.log(log_acc.size)) / np.log(10)),
        "log10_acceptance_median": float(np.median(log_acc) / np.log(10)),
    }
    if unscored == "measure":
        result["trajectories"] = int(trajectories)
    return result


def _batch_loss(probs: np.ndarray, targets: np.ndarray, scored: np.ndarray, loss: str, input_width: int) -> float:
    """The mean loss of teacher-forced distributions: the reference loss, or ``-log p[target]``
    averaged over the scored steps (``loss="cross-entropy"``)."""
    if loss == "cross-entropy":
        p_target = np.take_along_axis(probs[:, scored], targets[:, scored][..., None], axis=2)[..., 0]
        with np.errstate(divide="ignore"):
            return float(-np.log(p_target).mean())
    return _reference_loss(probs, targets, scored, input_width)[0]


def check_unscored(unscored: str) -> None:
    """Raises ValueError unless ``unscored`` is one of :data:`UNSCORED`."""
    if unscored not in UNSCORED:
        raise ValueError(f"unscored must be one of {', '.join(UNSCORED)}, got {unscored!r}.")


def _check_options(config, dataset, unscored, trajectories) -> None:
    if dataset.input_width != config.input_width:
        raise ValueError(
            f"The dataset {dataset.name} has {dataset.input_width}-bit tokens but the model has "
            f"input_width={config.input_width}."
        )
    check_unscored(unscored)
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 1:
        raise ValueError(f"trajectories must be a positive integer, got {trajectories!r}.")


def postselected_log_acceptance(forced, ignored: np.ndarray) -> np.ndarray:
    """Per sequence, the log probability that a shot is accepted when the don't-care steps
    (``ignored``, ``(B, T)``) are postselected: every neuron succeeds and those outcomes equal their
    targets, from a teacher-forced :class:`~qrnn_qiskit.engine.SequenceResult`."""
    with np.errstate(divide="ignore"):
        return _log_neuron_acceptance(forced) + np.where(ignored, np.log(forced.outcome_probability), 0.0).sum(axis=1)


def _log_neuron_acceptance(result) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(result.neuron_acceptance).sum(axis=1)


def _postselected_figures(engine, parameters, dataset, x, y, forced, rng, sums, log_acceptance) -> None:
    """Don't-care steps postselected on their targets (the reference's evaluation)."""
    scored = dataset.scored()
    sums["expected"] += float(np.prod(forced.outcome_probability[:, scored], axis=1).sum())
    sampled = engine.simulate(parameters, x, y, sample=dataset.sampled(y), seed=rng)
    hits = sampled.outcomes[:, scored] == y[:, scored]
    sums["correct"] += float(hits.all(axis=1).sum())
    sums["wrong"] += float((~hits).sum())
    log_acceptance.append(postselected_log_acceptance(forced, dataset.ignored(y)))


def _measured_figures(engine, parameters, dataset, x, y, trajectories, rng, sums, log_acceptance) -> None:
    """Don't-care steps measured: weighted trajectories per sequence (see :func:`evaluate_exact`)."""
    scored = dataset.scored()
    n = x.shape[0]
    xr, yr = np.repeat(x, trajectories, axis=0), np.repeat(y, trajectories, axis=0)
    ignored = dataset.ignored(yr)
    # expected accuracy: don't-care steps sampled, scored steps conditioned on their targets
    forced = engine.simulate(parameters, xr, yr, sample=ignored, seed=rng)
    value = np.prod(forced.outcome_probability[:, scored], axis=1).reshape(n, trajectories)
    sums["expected"] += float(_weighted_mean(_log_neuron_acceptance(forced).reshape(n, trajectories), value).sum())
    # sampled accuracy and acceptance: every unforced step sampled, as a shot runs
    sampled = engine.simulate(parameters, xr, yr, sample=dataset.sampled(yr) | ignored, seed=rng)
    hits = (sampled.outcomes[:, scored] == yr[:, scored]).reshape(n, trajectories, -1)
    log_w = _log_neuron_acceptance(sampled).reshape(n, trajectories)
    sums["correct"] += float(_weighted_mean(log_w, hits.all(axis=2)).sum())
    sums["wrong"] += float(_weighted_mean(log_w, (~hits).sum(axis=2)).sum())
    log_acceptance.append(np.logaddexp.reduce(log_w, axis=1) - np.log(trajectories))


def _weighted_mean(log_weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the mean of ``values`` weighted by ``exp(log_weights)`` (rows of trajectories)."""
    shifted = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    return (shifted * values).sum(axis=1) / shifted.sum(axis=1)


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
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        # Scored steps are decided in order, each with the earlier ones postselected on the decisions
        # (not on the targets, which would tell a later word what an earlier one was).
        forced = y.copy()
        decided = np.empty((x.shape[0], steps.size), np.int64)
        for j, t in enumerate(steps):
            mean = sum(engine.simulate(params, x, forced).probabilities for engine, params in engines) / len(engines)
            if j == 0:  # every step postselected on its target: the chance of getting every word right
                want_p = np.take_along_axis(mean[:, steps], y[:, steps][..., None], axis=2)[..., 0]
                expected += float(np.prod(want_p, axis=1).sum())
            decided[:, j] = mean[:, t].argmax(axis=1)
            forced[:, t] = decided[:, j]
        hit = decided == y[:, steps]
        right += float(hit.all(axis=1).sum())
        words_right += float(hit.sum())
    total = inputs.shape[0]
    return {
        "dataset": dataset.name,
        "split": split if batch is None else "batch",
        "sequences": int(total),
        "accuracy": right / total,
        "expected_accuracy": expected / total,
        "word_accuracy": words_right / (total * steps.size),
    }
