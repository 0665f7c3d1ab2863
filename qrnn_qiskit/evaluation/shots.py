"""Shots scored as the reference evaluates: which shots are accepted, how many are right, and what
the exact engine expected of the same sequences. Every runner (Aer, the IBM runtime, any
``BaseSamplerV2``) gives its shots as a :class:`ShotResult`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.engine.facade import ExactEngine
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.evaluation.exact import check_unscored, evaluate_exact, postselected_log_acceptance

__all__ = ["ShotResult", "check_accepted_shots", "evaluate_shots", "expected_figures"]


@dataclass(frozen=True)
class ShotResult:
    """Shots of ``B`` sequences: io tokens per step and whether each shot's neurons all succeeded.

    Attributes:
        tokens: ``(B, shots, T)`` io outcome of every step (token order, lane 0 = MSB).
        neurons_ok: ``(B, shots, T)``: every acceptance-deciding flag of step ``t`` read 0.
    """

    tokens: np.ndarray
    neurons_ok: np.ndarray

    @property
    def shots(self) -> int:
        return self.tokens.shape[1]

    def accepted(self, targets: np.ndarray | None = None, postselect: np.ndarray | None = None) -> np.ndarray:
        """``(B, shots)`` mask: all neurons succeeded at every step and, where ``postselect``
        (``(B, T)`` or ``(T,)``) is set, the io outcome equals ``targets``."""
        ok = self.neurons_ok.all(axis=2)
        if postselect is not None:
            mask = np.broadcast_to(np.asarray(postselect, bool), (self.tokens.shape[0], self.tokens.shape[2]))
            agree = (self.tokens == np.asarray(targets)[:, None, :]) | ~mask[:, None, :]
            ok &= agree.all(axis=2)
        return ok

    def joint_probabilities(self, targets: np.ndarray, num_outcomes: int) -> np.ndarray:
        """Estimate of ``Q[b, t, y]``: neurons of steps ``<= t`` succeed, io outcomes of steps ``< t``
        equal the targets, and step ``t`` reads ``y`` (see :mod:`qrnn_qiskit.engine.shift`)."""
        batch, shots, steps = self.tokens.shape
        agree = self.tokens == np.asarray(targets)[:, None, :]
        prefix = np.ones((batch, shots), bool)
        joint = np.zeros((batch, steps, num_outcomes))
        for t in range(steps):
            alive = prefix & self.neurons_ok[:, :, t]
            for y in range(num_outcomes):
                joint[:, t, y] = (alive & (self.tokens[:, :, t] == y)).sum(axis=1) / shots
            prefix = alive & agree[:, :, t]
        return joint


def evaluate_shots(config: QRNNConfig, parameters: np.ndarray, dataset, shots: ShotResult, *, split: str = "test",
                   limit: int | None = None, neuron_mode: str | NeuronMode = "postselect",
                   unscored: str = "postselect", expected: tuple | None = None) -> dict:
    """Score ``shots`` of the first ``limit`` sequences of ``split`` (as a runner sampled them).

    Shots are accepted when every deciding neuron flag reads 0 and, with ``unscored="postselect"``,
    every "don't care" io outcome equals its target (``measure``: read and ignored). ``accuracy``
    is the fraction of accepted shots whose scored outcomes all equal the targets, averaged over
    sequences that kept any shot;
    ``expected_accuracy`` and ``expected_acceptance`` are the exact engine's for the same sequences
    and the same meaning without noise (:func:`~qrnn_qiskit.evaluation.exact.evaluate_exact`).
    ``decided_accuracy`` counts sequences whose accepted shots read the target more often than any
    other outcome at every scored step (the majority vote a classifier on hardware uses);
    ``accuracy_sigma`` is the binomial standard error of ``accuracy``. ``expected``: the
    :func:`expected_figures` of these sequences when the caller computed them already.

    Raises:
        ValueError: when ``shots`` holds another number of sequences than are evaluated.
        QRNNError: when no shot at all is accepted (with the engine's expected acceptance).
    """
    batch = _sampled_batch(dataset, split, limit, shots)
    inputs, targets = batch.engine_arrays()
    check_unscored(unscored)
    mode = NeuronMode.parse(neuron_mode)
    scored = dataset.scored()
    dont_care = dataset.ignored(targets) if unscored == "postselect" else np.zeros(targets.shape, bool)
    accepted = shots.accepted(targets, postselect=dont_care)
    expected, expected_acceptance, expected_decided = expected if expected is not None else \
        expected_figures(config, parameters, dataset, batch, mode, unscored)
    kept = accepted.sum(axis=1)
    if kept.sum() == 0:
        raise QRNNError(_nothing_accepted(accepted.size, expected_acceptance, mode))
    right = (shots.tokens[:, :, scored] == targets[:, None, scored]).all(axis=2) & accepted
    has = kept > 0
    per_sequence = right.sum(axis=1)[has] / kept[has]
    result = {
        "dataset": dataset.name,
        "split": split,
        "sequences": int(inputs.shape[0]),
        "shots": int(shots.shots),
        "accepted_shots": int(kept.sum()),
        "acceptance": float(kept.sum() / accepted.size),
        "expected_acceptance": expected_acceptance,
        "accuracy": float(per_sequence.mean()),
        # the binomial spread of each sequence's estimate, through the mean over sequences
        "accuracy_sigma": float(np.sqrt((per_sequence * (1 - per_sequence) / kept[has]).sum()) / has.sum()),
        "decided_accuracy": float(_decided(shots, accepted, targets, scored, config.num_outcomes)[has].mean()),
        "expected_accuracy": float(expected.mean()),
        "expected_decided_accuracy": expected_decided,
        "expected_accuracy_of_kept_sequences": float(expected[has].mean()),
        "sequences_with_accepted_shots": int(has.sum()),
        "scored_step_distributions": _distributions(shots, accepted, scored, config.num_outcomes),
        "neuron_mode": str(mode),
        "unscored": unscored,
    }
    return result


def _sampled_batch(dataset, split: str, limit: int | None, shots: ShotResult):
    """The sequences ``shots`` were sampled for, checked against their number."""
    batch = dataset.split(split).first(limit)
    if shots.tokens.shape[0] != batch.inputs.shape[0]:
        raise ValueError(
            f"The shots hold {shots.tokens.shape[0]} sequences but {batch.inputs.shape[0]} are being evaluated: "
            "pass the same dataset, split and limit as when they were sampled."
        )
    return batch


def _distributions(shots: ShotResult, accepted: np.ndarray, scored: np.ndarray, num_outcomes: int) -> list[dict]:
    """Per scored step, the distribution of the accepted shots' outcomes over all sequences."""
    out = []
    for t in np.flatnonzero(scored):
        counts = np.array([((shots.tokens[:, :, t] == y) & accepted).sum() for y in range(num_outcomes)])
        out.append({"step": int(t), "distribution": (counts / max(counts.sum(), 1)).tolist()})
    return out


def _decided(shots: ShotResult, accepted, targets, scored, num_outcomes: int) -> np.ndarray:
    """Per sequence: at every scored step the target is read by strictly more accepted shots than
    any other outcome (a classifier decided by the majority of its shots; a tie is not a decision)."""
    tokens = shots.tokens[:, :, scored]
    counts = np.stack([((tokens == y) & accepted[:, :, None]).sum(axis=1) for y in range(num_outcomes)], axis=-1)
    right = np.take_along_axis(counts, targets[:, scored][..., None], axis=-1)[..., 0]
    others = np.where(np.arange(num_outcomes) == targets[:, scored][..., None], -1, counts).max(axis=-1)
    return (right > others).all(axis=1)


#: beyond this many lanes (4**lanes numbers a sequence) the density path gives way to trajectories
_DENSITY_LANES = 10


def expected_figures(config, parameters, dataset, batch, mode: str | NeuronMode, unscored: str) -> tuple:
    """The exact engine's expected accuracy per sequence, mean expected acceptance and expected
    decided accuracy for circuits of ``mode``, without noise. Teacher-forced don't-care steps on
    the pure path; measured ones, and ``rus`` and ``keep`` neurons, on the density path, exactly,
    or, for models of more than ten lanes, by weighted trajectories (64 a sequence) of the pure
    path (``rus`` as postselection there), the accuracy as one mean."""
    mode = NeuronMode.parse(mode)
    inputs, targets = batch.engine_arrays()
    if unscored == "postselect" and mode.kind in ("postselect", "amplify"):
        exact = ExactEngine(config, neuron_mode=mode.exact_meaning).simulate(parameters, inputs, targets)
        expected = np.prod(exact.outcome_probability[:, dataset.scored()], axis=1)
        decided = float((np.argmax(exact.probabilities[:, dataset.scored()], axis=2)
                         == targets[:, dataset.scored()]).all(axis=1).mean())
        return expected, float(np.exp(postselected_log_acceptance(exact, dataset.ignored(targets))).mean()), decided
    if config.num_lanes <= _DENSITY_LANES or not mode.discards:
        figures = evaluate_exact(config, parameters, dataset, batch=batch, seed=1,
                                 engine=EngineSpec("cpu", "float64", mode, unscored))
    else:
        figures = evaluate_exact(config, parameters, dataset, batch=batch, neuron_mode=mode.exact_meaning,
                                 unscored="measure", trajectories=64, seed=1)
    return (np.full(inputs.shape[0], figures["expected_accuracy"]), float(10.0 ** figures["log10_expected_acceptance"]),
            figures["decided_accuracy"])


def check_accepted_shots(config: QRNNConfig, parameters: np.ndarray, dataset, *, shots: int, split: str = "test",
                         limit: int | None = None, neuron_mode: str | NeuronMode = "postselect",
                         unscored: str = "postselect", acceptance: float | None = None) -> float:
    """Before any shot is sampled or paid for: the shots a sequence is expected to keep,
    ``shots`` times the exact engine's mean acceptance of the first ``limit`` sequences of ``split``
    (``acceptance`` when the caller has it already, e.g. under a device's noise).

    Raises:
        QRNNError: when fewer than one shot a sequence is expected to be kept, with the figure and
            how to raise it; ``submit_anyway`` (``--submit-anyway``) in the evaluation skips this check.
    """
    mode = NeuronMode.parse(neuron_mode)
    if acceptance is None:
        batch = dataset.split(split).first(limit)
        acceptance = expected_figures(config, parameters, dataset, batch, mode, unscored)[1]
    kept = shots * acceptance
    if kept < 1.0:
        raise QRNNError(
            f"Nothing to score: the exact engine expects {kept:.3g} accepted shots a sequence ({shots} shots x an "
            f"acceptance of {acceptance:.3e} a shot, neurons {mode}, don't-care steps {unscored.removesuffix('e')}ed), so about "
            f"{1 / max(acceptance, 1e-300):.3g} shots per accepted one. Raise it with more shots (--shots), a "
            "shorter sequence, neurons that keep their shots (--neuron-mode keep or rus:R) or measured don't-care "
            "steps (--unscored measure); or sample anyway with submit_anyway=True."
        )
    return kept


def _nothing_accepted(total: int, expected_acceptance: float, mode: NeuronMode) -> str:
    return (
        f"No shot was accepted out of {total}: the exact engine expects an acceptance of "
        f"{expected_acceptance:.3e} per shot for these sequences"
        + (" in postselect mode (rus accepts more, but noise and the retries' extra gates cost)" if mode.is_rus else "")
        + f", so about {1 / max(expected_acceptance, 1e-300):.3g} shots per accepted one. Use more shots, "
        + ("more retries (neuron_mode rus:R)" if mode.is_rus else "neuron_mode rus")
        + ", or a shorter sequence."
    )
