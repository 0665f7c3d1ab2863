"""A checkpoint evaluated on an IBM backend, live (``ibm_<name>``) or fake (``fake_<name>``): compile
once, show the cost, submit only when confirmed, record the jobs, score the shots."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn_qiskit.circuits.noise import noise_from_backend
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.evaluation.exact import evaluate_exact
from qrnn_qiskit.evaluation.shots import check_accepted_shots, evaluate_shots
from qrnn_qiskit.runners.ibm.backends import resolve_backend
from qrnn_qiskit.runners.ibm.credentials import connect
from qrnn_qiskit.runners.ibm.jobs import JobRecord, save_job_record
from qrnn_qiskit.runners.ibm.runner import IBMRunner

__all__ = ["SubmissionNotConfirmed", "evaluate_on_backend", "predict_on_device"]

logger = logging.getLogger("qrnn_qiskit")


class SubmissionNotConfirmed(QRNNError):
    """A live submission was asked for without ``yes=True``; nothing was submitted."""


_FIGURES = ("two_qubit_gates", "depth", "two_qubit_depth", "qubits", "layout", "layout_strategy",
            "swap_overhead_two_qubit_gates_per_step", "duration_seconds", "success_probability_estimate")


def evaluate_on_backend(
    checkpoint, dataset, backend: str, *, split: str = "test", limit: int | None = None, token: str | None = None,
    instance: str | None = None, yes: bool = False, out: str | os.PathLike | None = None,
    job_ids: Sequence[str] = (), rows: list | None = None, source: str | None = None, unscored: str = "postselect",
    submit_anyway: bool = False, **runner_options,
) -> dict:
    """Evaluate a :class:`~qrnn_qiskit.models.Checkpoint` on ``ibm_<name>`` or ``fake_<name>``.

    Compiles once (``runner_options``: those of :class:`IBMRunner`), logs the cost (circuits,
    shots, QPU seconds) and the compiled figures, and on a live backend submits only with
    ``yes=True``. With ``job_ids`` (and the job ``rows`` of a record) it collects those jobs
    instead of submitting. The job record goes to ``out/jobs.json`` before waiting (live runs
    default to ``runs/ibm-<backend>-<time>``), the result to ``out/result.json``. ``source``
    names the checkpoint in the record; ``unscored`` how the don't-care steps' shots are scored.
    Unless ``submit_anyway``, the engine's prediction must expect an accepted shot a sequence first.

    Raises:
        SubmissionNotConfirmed: for a live submission without ``yes`` (the message holds the cost).
        CredentialError, QRNNError, ValueError: as :func:`connect`, :class:`IBMRunner` and collecting say.
    """
    live, service, device, backend = _device(backend, token, instance)
    runner = IBMRunner(device, name=backend, **runner_options)
    inputs, _ = dataset.split(split).first(limit).engine_arrays()
    prediction = None if job_ids else predict_on_device(checkpoint.config, checkpoint.parameters, dataset,
                                                        runner.backend, split=split, limit=limit,
                                                        neuron_mode=runner.neuron_mode, unscored=unscored)
    if not job_ids and not submit_anyway:
        _precheck(checkpoint, dataset, runner, prediction, split=split, limit=limit, unscored=unscored)
    cost, figures = _cost_and_figures(runner, checkpoint, inputs, gate=live and not yes and not job_ids,
                                      log=not job_ids, prediction=prediction)
    context = {"checkpoint": str(source), "dataset": dataset.name, "split": split, "limit": limit}
    if job_ids:
        record = JobRecord(backend, list(job_ids), rows or [None] * len(job_ids), inputs.shape[1], runner.shots,
                           str(runner.neuron_mode), context)
        shots_result = runner.collect(checkpoint.config, record, service=service)
    else:
        if out is None and live:
            out = f"runs/ibm-{backend}-{time.strftime('%Y%m%d-%H%M%S')}"
        record = runner.submit(checkpoint.config, checkpoint.parameters, inputs, context=context)
        if out is not None:
            path = save_job_record(record, out)
            if live:
                logger.info("job ids %s saved in %s; collect them later from that folder (qrnn eval CHECKPOINT --jobs "
                            "FOLDER; jobs=FOLDER in Python)", record.job_ids, path)
            else:  # a fake backend's jobs run here and end with this process; the figures go to result.json
                logger.info("%s runs locally: its figures go to %s when it ends", backend, Path(out) / "result.json")
        shots_result = runner.collect(checkpoint.config, record)
    result = evaluate_shots(checkpoint.config, checkpoint.parameters, dataset, shots_result, split=split, limit=limit,
                            neuron_mode=runner.neuron_mode, unscored=unscored)
    result.update({"backend": backend, "job_ids": record.job_ids, "cost": cost, **figures})
    if prediction is not None:
        result["predicted"] = prediction
    return _written(result, out)


def _device(backend, token, instance) -> tuple:
    """``(live, service, backend object, name)`` of a backend name or a ``BackendV2``: live for
    ``ibm_*`` (credentials resolved) and for qiskit-ibm-runtime's device objects, so their cost gate holds."""
    if isinstance(backend, str):
        live = backend.startswith("ibm_")
        service = connect(token, instance)[0] if live else None
        return live, service, resolve_backend(backend, service), backend
    module = type(backend).__module__
    live = module.startswith("qiskit_ibm_runtime") and "fake_provider" not in module
    return live, getattr(backend, "service", None) if live else None, backend, str(getattr(backend, "name", "backend"))


def _precheck(checkpoint, dataset, runner, prediction: dict, *, split, limit, unscored) -> None:
    """The device's expected accepted shots a sequence (under its noise when predicted), before any is paid for."""
    acceptance = None if "unavailable" in prediction else 10.0 ** prediction["log10_expected_acceptance"]
    check_accepted_shots(checkpoint.config, checkpoint.parameters, dataset, shots=runner.shots, split=split,
                         limit=limit, neuron_mode=runner.neuron_mode, unscored=unscored, acceptance=acceptance)


def _written(result: dict, out) -> dict:
    """``result``, also in ``out/result.json`` when there is an ``out``."""
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out) / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def predict_on_device(config, parameters: np.ndarray, dataset, backend, *, split: str = "test",
                      limit: int | None = None, neuron_mode="postselect", unscored: str = "postselect",
                      seed: int = 0) -> dict:
    """What the exact engine predicts a device will score: the checkpoint under the device's
    meaning (neurons as the circuits run them, don't-care steps as ``unscored`` scores them, the
    noise read from the backend's reported errors by
    :func:`~qrnn_qiskit.circuits.noise.noise_from_backend`), on the same sequences.

    Returns the figures of :func:`~qrnn_qiskit.evaluation.exact.evaluate_exact` (``noise`` names
    where they came from), or ``{"unavailable": why}`` when the model is too large for the
    density path or the backend reports no errors.
    """
    try:
        noise = noise_from_backend(backend, config, neuron_mode=neuron_mode)
        spec = EngineSpec("cpu", "float64", neuron_mode, unscored, noise)
        batch = dataset.split(split).first(limit)
        return evaluate_exact(config, parameters, dataset, split=split, batch=batch, seed=seed, engine=spec)
    except (QRNNError, ValueError) as exc:
        return {"unavailable": str(exc)}


def _prediction_line(prediction: dict | None) -> tuple[str, ...]:
    if prediction is None:
        return ()
    if "unavailable" in prediction:
        return (f"no prediction by the exact engine: {prediction['unavailable']}",)
    noise = prediction.get("noise") or {}
    return (f"predicted by the exact engine under this device's noise ({noise.get('source', 'no noise')}): "
            f"acceptance {10 ** prediction['log10_expected_acceptance']:.3g} a shot, accuracy "
            f"{prediction['expected_accuracy']:.3f} a shot, {prediction['decided_accuracy']:.3f} decided by majority "
            f"(over {prediction['sequences']} sequences)",)


def _cost_and_figures(runner: IBMRunner, checkpoint, inputs: np.ndarray, *, gate: bool, log: bool,
                      prediction: dict | None = None) -> tuple[dict, dict]:
    """The cost and compiled figures of evaluating ``inputs``; raised with ``gate``, logged with ``log``
    (not when collecting jobs already paid for)."""
    prepared = runner.prepare(checkpoint.config, checkpoint.parameters, inputs.shape[1])
    cost = runner.cost(prepared, inputs.shape[0])
    figures = {k: prepared.report[k] for k in _FIGURES}
    figures["swap_overhead_two_qubit_gates"] = figures.pop("swap_overhead_two_qubit_gates_per_step")
    lines = (
        f"cost on {runner.name}: {cost['circuits']} circuit(s) in {cost['jobs']} job(s) x {runner.shots} shots, "
        f"about {cost['estimated_qpu_seconds']} QPU seconds ({cost['estimate_basis']})",
        f"compiled for {runner.name}: {figures['two_qubit_gates']} 2-qubit gates, depth {figures['depth']}, "
        f"{figures['qubits']} qubits, estimated success {figures['success_probability_estimate']:.3e}",
        *_prediction_line(prediction),
    )
    if gate:
        raise SubmissionNotConfirmed(
            "\n".join(lines) + f"\nNothing was submitted to {runner.name}: review the cost above and pass yes "
            "(--yes) to submit."
        )
    for line in lines if log else ():
        logger.info(line)
    return cost, figures
