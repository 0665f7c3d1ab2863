"""A model evaluated on the exact engine, measured as the reference measures it: loss, sampled and
expected accuracy, character error rate and the acceptance of the whole circuit."""

from __future__ import annotations

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.data.base import Dataset, SequenceBatch
from qrnn_qiskit.engine.memory import check_memory, density_bytes
from qrnn_qiskit.engine.results import reference_loss
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.models.classical import check_loss
from qrnn_qiskit.models.registry import make_engine

__all__ = ["UNSCORED", "check_unscored", "evaluate_exact", "postselected_log_acceptance"]


UNSCORED = ("postselect", "measure")  # the engine spec's (qrnn_qiskit.engine.spec.UNSCORED)


def evaluate_exact(
    config: QRNNConfig,
    parameters: np.ndarray,
    dataset: Dataset,
    *,
    split: str = "test",
    batch: SequenceBatch | None = None,
    chunk: int = 4096,
    seed: int | np.random.Generator | None = 0,
    engine: str | EngineSpec = "cpu",
    precision: str = "float64",
    neuron_mode: str = "postselect",
    unscored: str = "postselect",
    noise: NoiseSpec | str | None = None,
    trajectories: int | None = None,
    loss: str = "reference",
) -> dict:
    """Loss and accuracy of a model on a whole split (or on ``batch``).

    ``accuracy`` samples the io measurement at scored steps (except the dataset's "don't care"
    steps) and counts sequences whose scored words all match (digest 3.2, 7.9);
    ``expected_accuracy`` is the exact probability of that event, averaged over sequences;
    ``decided_accuracy`` counts sequences whose every scored step's most likely outcome is the
    target (a classifier decided by the majority of many shots). ``character_error_rate`` is the
    fraction of scored words sampled wrong (``word_accuracy`` is one minus it: the paper's
    all-digit figures are per label word); ``loss`` the reference loss (with
    ``loss="cross-entropy"``, ``-log p[target]`` averaged over the scored steps: a classical
    baseline's training loss); ``min_postselection_probability`` the smallest probability of a
    scored target. ``engine`` and ``precision`` choose the exact engine's path; ``neuron_mode``
    what the neurons compute; an :class:`EngineSpec` ``engine`` gives all of it, with
    ``unscored`` and ``noise``.

    ``unscored`` says what happens at the "don't care" steps: ``postselect`` (the reference's
    evaluation: the io outcome must equal the target, a condition on the shot; ``loss`` under
    teacher forcing) or ``measure`` (a device's way: the io lanes are measured and the run
    continues with whatever was read). Under ``measure``, with ``noise``, or with neurons that keep
    or retry failed branches, the figures are the device's exact meaning on the density path
    (:mod:`qrnn_qiskit.engine.backends.density`): the loss on the distributions of a shot that
    measures every step, the accuracies among accepted shots. ``trajectories`` (an integer)
    instead estimates ``measure`` on the pure-state path by that many sampled trajectories per
    sequence, each weighted by the probability that its neurons all succeed (for models too large
    for the density path; no noise). ``log10_expected_acceptance`` is the probability that a shot
    of the whole circuit is accepted (neurons, and the postselected don't-care steps under
    ``postselect``), averaged over sequences.
    """
    spec = _spec(engine, precision, neuron_mode, unscored, noise, trajectories)
    _check_options(config, dataset, spec.unscored, trajectories)
    check_loss(loss)
    engine = make_engine(config, engine=spec)
    data = batch if batch is not None else dataset.split(split)
    inputs, targets = data.engine_arrays()
    _check_size(config, spec, min(chunk, inputs.shape[0]), inputs.shape[1], trajectories)
    sums, log_acceptance = _accumulate(engine, spec, parameters, dataset, inputs, targets, chunk, loss, unscored,
                                       trajectories, np.random.default_rng(seed))
    result = _figures(dataset, split if batch is None else "batch", inputs.shape[0], sums, log_acceptance)
    result.update(neuron_mode=str(spec.neuron_mode), unscored=unscored if trajectories is not None else spec.unscored)
    if spec.noise is not None:
        result["noise"] = spec.noise.to_dict()
    result.update({"trajectories": int(trajectories)} if trajectories is not None else {})
    return result


#: what one chunk of the density path's evaluation may hold
_DENSITY_CHUNK_BYTES = 2**30


def _accumulate(engine, spec, parameters, dataset, inputs, targets, chunk, loss, unscored, trajectories, rng):
    """The sums of :func:`evaluate_exact` over the sequences, a chunk at a time."""
    sums = dict(loss=0.0, correct=0.0, expected=0.0, decided=0.0, wrong=0.0, min_post=1.0)
    log_acceptance: list[np.ndarray] = []
    if spec.mixed and isinstance(engine.config, QRNNConfig):
        per_sequence = density_bytes(engine.config.num_lanes, 1, spec.complex_amplitudes) * 8
        chunk = max(1, min(chunk, _DENSITY_CHUNK_BYTES // per_sequence))  # the density path's states are large
    for start in range(0, inputs.shape[0], chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        if spec.mixed:
            _device_figures(engine, parameters, dataset, x, y, loss, rng, sums, log_acceptance)
        else:
            _chunk_figures(engine, parameters, dataset, x, y, loss, unscored, trajectories, rng, sums, log_acceptance)
    return sums, np.concatenate(log_acceptance)


def _spec(engine, precision, neuron_mode, unscored, noise, trajectories) -> EngineSpec:
    """The engine spec of :func:`evaluate_exact`'s options (a spec passes through; ``trajectories``
    estimate ``measure`` on the pure path, so the spec then keeps ``unscored`` postselect)."""
    check_unscored(unscored)
    if isinstance(engine, EngineSpec):
        return engine
    if trajectories is not None:
        if noise is not None:
            raise ValueError("trajectories estimate measured steps on the pure-state path, which has no noise; "
                             "leave trajectories out for the exact density path.")
        return EngineSpec.parse(engine, precision, neuron_mode)
    return EngineSpec.parse(engine, precision, neuron_mode, unscored, noise)


def _chunk_figures(engine, parameters, dataset, x, y, loss, unscored, trajectories, rng, sums, log_acceptance) -> None:
    """Add one chunk of sequences to the running sums of :func:`evaluate_exact` (pure path)."""
    forced = engine.simulate(parameters, x, y)
    sums["loss"] += _batch_loss(forced.probabilities, y, dataset.scored(), loss, engine.config.input_width) * x.shape[0]
    sums["min_post"] = min(sums["min_post"], forced.min_postselection_probability)
    sums["decided"] += float(_decided(forced.probabilities, y, dataset.scored()).sum())
    if unscored == "postselect":
        _postselected_figures(engine, parameters, dataset, x, y, forced, rng, sums, log_acceptance)
    else:
        _measured_figures(engine, parameters, dataset, x, y, trajectories, rng, sums, log_acceptance)


def _decided(probs: np.ndarray, targets: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """Per sequence: every scored step's most likely outcome is its target."""
    return (np.argmax(probs[:, scored], axis=2) == targets[:, scored]).all(axis=1)


def _device_figures(engine, parameters, dataset, x, y, loss, rng, sums, log_acceptance) -> None:
    """One chunk under a mixed meaning (density path), exactly: a shot measures every step; the
    accuracies are among accepted shots."""
    scored = dataset.scored()
    steps, n = x.shape[1], x.shape[0]
    measured = engine.simulate(parameters, x, y, measure=np.ones(steps, bool))
    sums["loss"] += _batch_loss(measured.probabilities, y, scored, loss, engine.config.input_width) * n
    with np.errstate(divide="ignore"):
        log_accepted = np.log(measured.neuron_acceptance).sum(axis=1)
    only_last = scored.sum() == 1 and scored[-1]
    # the scored steps conditioned on their targets (identical to `measured` up to a last scored step)
    forced = measured if only_last else engine.simulate(parameters, x, y, measure=~scored)
    picked = np.take_along_axis(forced.probabilities, y[..., None], axis=2)[..., 0][:, scored]
    with np.errstate(divide="ignore"):
        log_joint = np.log(forced.neuron_acceptance).sum(axis=1) + np.log(picked).sum(axis=1)
    sums["expected"] += float(np.exp(log_joint - log_accepted).sum())
    sums["decided"] += float(_decided(forced.probabilities, y, scored).sum())
    sums["min_post"] = min(sums["min_post"], float(picked.min()))
    if only_last:  # a shot's reading of the last step is a draw from its distribution
        p = forced.probabilities[:, -1]
        drawn = (np.cumsum(p, axis=1) < rng.random(n)[:, None]).sum(axis=1).clip(max=p.shape[1] - 1)
        hits = (drawn == y[:, -1])[:, None]
    else:
        sampled = engine.simulate(parameters, x, y, sample=scored, measure=~scored, seed=rng)
        hits = sampled.outcomes[:, scored] == y[:, scored]
    sums["correct"] += float(hits.all(axis=1).sum())
    sums["wrong"] += float((~hits).sum())
    log_acceptance.append(log_accepted)


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
        "decided_accuracy": sums["decided"] / total,
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


def _check_size(config, spec: EngineSpec, batch: int, steps: int, trajectories: int | None) -> None:
    """The engine's memory for one chunk, refused before anything of that size is allocated."""
    if isinstance(config, QRNNConfig):
        check_memory(config, batch, steps, density=spec.mixed, complex_amplitudes=spec.complex_amplitudes, block=1,
                     trajectories=trajectories, gradient=False, path=spec.backend,
                     options="--trajectories or the model (I+W)" if trajectories else "the model (I+W)")


def _check_options(config, dataset, unscored, trajectories) -> None:
    if dataset.input_width != config.input_width:
        raise ValueError(
            f"The dataset {dataset.name} has {dataset.input_width}-bit tokens but the model has "
            f"input_width={config.input_width}."
        )
    check_unscored(unscored)
    if trajectories is not None and (isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer))
                                     or trajectories < 1):
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
