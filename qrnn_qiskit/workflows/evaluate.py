"""``qrnn eval``: a checkpoint evaluated on the exact engine, Aer, or an IBM backend (live or fake)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn_qiskit.circuits.noise import resolve_noise
from qrnn_qiskit.core.errors import DatasetError, QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.decided import evaluate_ensemble
from qrnn_qiskit.evaluation.exact import check_unscored, evaluate_exact
from qrnn_qiskit.evaluation.shots import check_accepted_shots, evaluate_shots, expected_figures
from qrnn_qiskit.models.checkpoint import load_checkpoint
from qrnn_qiskit.models.registry import is_qrnn
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.ibm.jobs import load_job_record
from qrnn_qiskit.runners.sampler import SamplerRunner
from qrnn_qiskit.workflows.hardware import evaluate_on_backend

__all__ = ["checkpoint_dataset", "evaluate", "evaluate_sampled"]


def checkpoint_dataset(checkpoint, path, dataset: str | None = None, data_dir: str | os.PathLike | None = None):
    """The dataset to evaluate ``checkpoint`` (read from ``path``) on: ``dataset``, else the one it
    was trained on; its data folder ``data_dir``, else the folder it was trained from, else (a run
    trained on another machine) the data cache of ``qrnn datasets fetch``.

    Raises:
        ValueError: when neither ``dataset`` nor the checkpoint names a dataset.
        DatasetError: when the data is missing (saying when the folder came from the checkpoint).
    """
    name = dataset or checkpoint.meta.get("dataset")
    if not name:
        raise ValueError(f"The checkpoint {path} does not name its dataset; pass dataset.")
    trained = checkpoint.meta.get("settings", {})
    stored = data_dir is None and name == trained.get("dataset") and trained.get("data_dir")
    if stored:
        data_dir = trained["data_dir"]  # the folder it was trained from; data_dir overrides
    try:
        return get_dataset(name, data_dir=data_dir, sentence_length=trained.get("sentence_length"))
    except DatasetError as exc:
        if not stored:
            raise
        try:  # trained on another machine (a committed run): the data cache of `qrnn datasets fetch`
            return get_dataset(name, sentence_length=trained.get("sentence_length"))
        except DatasetError:
            pass
        raise DatasetError(f"{str(exc).rstrip('.')}: it is the folder {path} was trained from, and the data cache "
                           f"has no copy either; pass data_dir, or run `qrnn datasets fetch {name}`.") from exc


def evaluate(
    checkpoint: str | os.PathLike, *, backend: str = "exact", dataset: str | None = None,
    data_dir: str | os.PathLike | None = None, split: str = "test", limit: int | None = None, shots: int = 1024,
    neuron_mode: str | NeuronMode = "postselect", noise: str | None = None, device: str = "CPU", seed: int = 0,
    token: str | None = None, instance: str | None = None, optimization_level: int = 1, layout: str = "auto",
    dynamical_decoupling: bool = False, twirling: bool = False, yes: bool = False,
    out: str | os.PathLike | None = None, job_ids: Sequence[str] = (), jobs: str | os.PathLike | None = None,
    ensemble: Sequence[str | os.PathLike] = (), engine: str = "cpu", precision: str = "float64",
    unscored: str = "postselect", trajectories: int | None = None, submit_anyway: bool = False,
) -> dict:
    """Evaluate a checkpoint: loss, sampled accuracy, exact expected accuracy, CER, acceptance.

    Args:
        checkpoint: a checkpoint file.
        backend: ``exact`` (the engine), ``aer`` (sampled shots of the real circuits; ``shots``,
            ``neuron_mode``, ``noise``, ``device``), ``ibm_<name>`` (an IBM Quantum device; ``token``,
            ``instance``, cost gate ``yes``) or ``fake_<name>`` (offline, the same path).
        dataset, data_dir: default to the checkpoint's dataset and data folder.
        split, limit, seed: the split, how many of its first sequences (all when ``None``), and the
            seed of the sampled measurements.
        optimization_level, layout, dynamical_decoupling, twirling: ``ibm_*``/``fake_*`` options.
        yes, submit_anyway: submit to a live device (else the cost is raised as ``SubmissionNotConfirmed``);
            sample or submit although the engine expects under one accepted shot a sequence.
        out, job_ids, jobs: folder for ``jobs.json`` and ``result.json``; collect these submitted jobs,
            or those recorded in ``jobs/jobs.json`` (its settings too), instead of submitting.
        ensemble, engine, precision: more checkpoints averaged with it; the exact engine's path and arithmetic.
        neuron_mode: ``postselect``, ``rus[:R]`` (circuits only) or ``amplify[:L]`` (every backend).
        unscored: don't-care steps ``postselect``-ed on their targets (the reference) or ``measure``-d.
        noise: exact: the device noise computed under (rates, or a backend: ``fake_torino``);
            aer: ``fake_<name>``, whose noise model the shots run under.
        trajectories: on the exact backend, estimate ``unscored="measure"`` by sampled trajectories a
            sequence (pure path) instead of exactly (density path).

    Raises:
        ValueError: unknown backends, inconsistent options. QRNNError: unreadable files, accounts, jobs; hopeless sampling.
    """
    rows = None
    if jobs is not None:  # the record's settings replace the arguments; a fake run's figures are its result
        backend, job_ids, rows, shots, neuron_mode, dataset, split, limit = _from_job_record(
            jobs, job_ids, backend, dataset, split, limit)
        if backend.startswith("fake_"):
            return _fake_result(jobs, backend)
    _check_backend(backend, job_ids)
    ck = load_checkpoint(checkpoint)
    _check_model(ck, checkpoint, backend)
    ds = checkpoint_dataset(ck, checkpoint, dataset, data_dir)
    if ensemble:
        return _evaluate_ensemble([checkpoint, *ensemble], ck, ds, backend, split=split, limit=limit, seed=seed,
                                  engine=engine, precision=precision)
    if not isinstance(backend, str) or backend not in ("exact", "aer"):
        result = evaluate_on_backend(ck, ds, backend, **dict(
            split=split, limit=limit, token=token, instance=instance, yes=yes, out=out, job_ids=job_ids, rows=rows,
            source=checkpoint, shots=shots, neuron_mode=neuron_mode, seed=seed, optimization_level=optimization_level,
            layout=layout, dynamical_decoupling=dynamical_decoupling, twirling=twirling, unscored=unscored,
            submit_anyway=submit_anyway))
    else:
        result = _evaluate_locally(ck, ds, backend, **dict(
            split=split, limit=limit, seed=seed, shots=shots, neuron_mode=neuron_mode, noise=noise, device=device,
            engine=engine, precision=precision, unscored=unscored, trajectories=trajectories, submit_anyway=submit_anyway))
    return {**result, "checkpoint": str(checkpoint)}


def _fake_result(jobs, backend: str) -> dict:
    """A fake backend's run, collected offline: its jobs ran in the process that submitted them, which
    wrote their figures to ``result.json`` beside the record."""
    path = Path(jobs) / "result.json"
    if not path.is_file():
        raise QRNNError(f"{jobs} records a run on {backend}, which ran locally and ended with the process that "
                        f"started it, without writing {path.name} (it was interrupted). Run it again: qrnn eval "
                        f"CHECKPOINT --backend {backend} --out {jobs}.")
    return json.loads(path.read_text(encoding="utf-8"))


def _check_backend(backend, job_ids) -> bool:
    """Whether ``backend`` is an IBM (or fake) device, or a backend object; a ValueError for unknown
    names, and for a ``Target``, which compiles but runs no shots."""
    if not isinstance(backend, str):
        if not (hasattr(backend, "target") and hasattr(backend, "run")):
            raise ValueError(f"backend must be a name (exact, aer, ibm_<name>, fake_<name>) or a BackendV2 that runs "
                             f"circuits, got {type(backend).__name__}; a Target compiles but runs no shots (build "
                             "takes one).")
        return True
    ibm = backend.startswith(("ibm_", "fake_"))
    if backend not in ("exact", "aer") and not ibm:
        raise ValueError(
            f"Unknown backend {backend!r}; expected exact, aer, ibm_<name> (e.g. ibm_torino) or fake_<name> (e.g. fake_torino)."
        )
    if job_ids and not ibm:
        raise ValueError("job_ids collects IBM Quantum jobs; give the backend they ran on (ibm_<name> or fake_<name>).")
    return ibm


def _check_model(ck, checkpoint, backend: str) -> None:
    """Classical baselines have no circuit: only the exact backend evaluates them."""
    if not is_qrnn(ck.config) and backend != "exact":
        raise ValueError(f"{checkpoint} holds a classical {ck.config.kind} baseline: it has no circuit to run on "
                         f"backend {backend!r}; evaluate it with backend exact.")


def _from_job_record(jobs, job_ids, backend: str, dataset, split, limit) -> tuple:
    """backend, job ids, rows, shots, neuron mode, dataset, split and limit from a job record."""
    if job_ids:
        raise ValueError("Give jobs (a run folder) or job_ids, not both.")
    record = load_job_record(jobs)
    if backend not in ("exact", record.backend):
        raise ValueError(f"{jobs} records jobs on {record.backend}, not backend {backend}.")
    context = record.context
    limit = limit if limit is not None else context.get("limit")
    return (record.backend, tuple(record.job_ids), list(record.rows), record.shots, record.neuron_mode,
            dataset or context.get("dataset"), context.get("split", split), limit)


def _evaluate_locally(ck, ds, backend: str, *, split, limit, seed, shots, neuron_mode, noise, device, engine,
                      precision, unscored, trajectories, submit_anyway) -> dict:
    """The exact engine's figures, or Aer's sampled ones beside them."""
    if backend == "exact":
        batch = ds.split(split).first(limit) if limit is not None else None
        noise = resolve_noise(noise, ck.config, neuron_mode=neuron_mode) if is_qrnn(ck.config) else noise
        return evaluate_exact(ck.config, ck.parameters, ds, split=split, batch=batch, seed=seed, engine=engine,
                              precision=precision, neuron_mode=str(neuron_mode), unscored=unscored, noise=noise,
                              trajectories=trajectories)
    runner = AerRunner(device=device, noise=noise, shots=shots, seed=seed, neuron_mode=neuron_mode)
    return {"backend": "aer", "noise": noise, "device": device,
            **evaluate_sampled(runner, ck.config, ck.parameters, ds, split=split, limit=limit, unscored=unscored,
                               submit_anyway=submit_anyway)}


def _evaluate_ensemble(paths, first, dataset, backend: str, *, split, limit, seed, engine, precision) -> dict:
    """The ensemble of the checkpoints at ``paths`` (``first`` already loaded), with each member's figures."""
    if backend != "exact":
        raise ValueError(f"An ensemble is evaluated on the exact engine, not backend {backend}.")
    members = [first] + [load_checkpoint(path) for path in paths[1:]]
    for path, member in zip(paths, members):
        trained_on = member.meta.get("dataset")
        if trained_on and trained_on != first.meta.get("dataset"):
            raise ValueError(
                f"Ensemble members must share the dataset: {paths[0]} was trained on {first.meta.get('dataset')}, "
                f"{path} on {trained_on}."
            )
    batch = dataset.split(split).first(limit) if limit is not None else None
    result = evaluate_ensemble([(m.config, m.parameters) for m in members], dataset, split=split, batch=batch,
                               engine=engine, precision=precision)
    result["member_figures"] = [
        {"checkpoint": str(path), **evaluate_exact(m.config, m.parameters, dataset, split=split, batch=batch, seed=seed,
                                                   engine=engine, precision=precision)}
        for path, m in zip(paths, members)
    ]
    result["checkpoint"] = [str(path) for path in paths]
    return result


def evaluate_sampled(runner: SamplerRunner, config, parameters: np.ndarray, dataset, *, split: str = "test",
                     limit: int | None = None, unscored: str = "postselect", submit_anyway: bool = False) -> dict:
    """Sample the first ``limit`` sequences of ``split`` with ``runner`` and score the shots
    (:func:`~qrnn_qiskit.evaluation.shots.evaluate_shots`). First, unless ``submit_anyway``, the
    exact engine's expected accepted shots a sequence must reach one
    (:func:`~qrnn_qiskit.evaluation.shots.check_accepted_shots`)."""
    check_unscored(unscored)
    batch = dataset.split(split).first(limit)
    expected = expected_figures(config, parameters, dataset, batch, runner.neuron_mode, unscored)  # once, for both
    if not submit_anyway:
        check_accepted_shots(config, parameters, dataset, shots=runner.shots, split=split, limit=limit,
                             neuron_mode=runner.neuron_mode, unscored=unscored, acceptance=expected[1])
    shots = runner.sample(config, parameters, batch.engine_arrays()[0])
    return evaluate_shots(config, parameters, dataset, shots, split=split, limit=limit,
                          neuron_mode=runner.neuron_mode, unscored=unscored, expected=expected)
