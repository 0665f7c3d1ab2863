"""A model evaluated on the exact engine, measured as the reference measures it: loss, sampled and
expected accuracy, character error rate and the acceptance of the whole circuit."""

from __future__ import annotations

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.data.base import Dataset, SequenceBatch
from qrnn_qiskit.engine.results import reference_loss
from qrnn_qiskit.models.classical import check_loss
from qrnn_qiskit.models.registry import make_engine

__all__ = ["UNSCORED", "check_unscored", "evaluate_exact", "postselected_log_acceptance"]


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
    sums = dict(loss=0.0, correct=0.0, expected=0.0, wrong=0.0, min_post=1.0)
    log_acceptance: list[np.ndarray] = []
    for start in range(0, inputs.shape[0], chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        _chunk_figures(engine, parameters, dataset, x, y, loss, unscored, trajectories, rng, sums, log_acceptance)
    result = _figures(dataset, split if batch is None else "batch", inputs.shape[0], sums, np.concatenate(log_acceptance))
    result.update(neuron_mode=str(getattr(engine, "neuron_mode", "postselect")), unscored=unscored)
    if unscored == "measure":
        result["trajectories"] = int(trajectories)
    return result


def _chunk_figures(engine, parameters, dataset, x, y, loss, unscored, trajectories, rng, sums, log_acceptance) -> None:
    """Add one chunk of sequences to the running sums of :func:`evaluate_exact`."""
    forced = engine.simulate(parameters, x, y)
    sums["loss"] += _batch_loss(forced.probabilities, y, dataset.scored(), loss, engine.config.input_width) * x.shape[0]
    sums["min_post"] = min(sums["min_post"], forced.min_postselection_probability)
    if unscored == "postselect":
        _postselected_figures(engine, parameters, dataset, x, y, forced, rng, sums, log_acceptance)
    else:
        _measured_figures(engine, parameters, dataset, x, y, trajectories, rng, sums, log_acceptance)


def _figures(dataset, split: str, total: int, sums: dict, log_acc: np.ndarray) -> dict:
    """The figures of :func:`evaluate_exact` from its sums over ``total`` sequences."""
    words = total * int(dataset.scored().sum())
    return {
        "dataset": dataset.name,
        "split": split,
        "sequences": int(total),
        "loss": sums["loss"] / total,
        "accuracy": sums["correct"] / total,
        "expected_accuracy": sums["expected"] / total,
        "character_error_rate": sums["wrong"] / words,
        "word_accuracy": 1.0 - sums["wrong"] / words,  # the paper's all-digit figures count label words
        "min_postselection_probability": sums["min_post"],
        "log10_expected_acceptance": float((np.logaddexp.reduce(log_acc) - np.log(log_acc.size)) / np.log(10)),
        "log10_acceptance_median": float(np.median(log_acc) / np.log(10)),
    }


def _batch_loss(probs: np.ndarray, targets: np.ndarray, scored: np.ndarray, loss: str, input_width: int) -> float:
    """The mean loss of teacher-forced distributions: the reference loss, or ``-log p[target]``
    averaged over the scored steps (``loss="cross-entropy"``)."""
    if loss == "cross-entropy":
        p_target = np.take_along_axis(probs[:, scored], targets[:, scored][..., None], axis=2)[..., 0]
        with np.errstate(divide="ignore"):
            return float(-np.log(p_target).mean())
    return reference_loss(probs, targets, scored, input_width)[0]


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
