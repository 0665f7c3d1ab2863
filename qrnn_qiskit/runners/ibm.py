"""Running QRNN circuits on IBM Quantum backends through qiskit-ibm-runtime.

The same path serves a live backend (``ibm_<name>``, with an account) and a fake one
(``fake_<name>``, offline): the circuit is built with bound weights and symbolic inputs,
transpiled once to the backend's ISA (preset pass manager, compact or default layout, whichever
needs fewer 2-qubit gates), and submitted to the runtime's current sampler
(:class:`qiskit_ibm_runtime.executor_sampler.Sampler`) in Batch mode as one PUB per job whose
parameter array holds every evaluated sequence. On a fake backend the runtime's local mode runs
the PUB on Aer with the backend's noise model; Aer truncates the simulation to the qubits the
ISA circuit touches.

Credentials: ``token``/``instance`` arguments, then ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE``,
then the account saved with ``QiskitRuntimeService.save_account``. The token is never printed,
logged or written: error texts from the service are scrubbed of it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.runners.sampler import SamplerRunner, check_shots
from qrnn_qiskit.runners.shots import ShotResult

__all__ = [
    "TOKEN_ENV",
    "INSTANCE_ENV",
    "CredentialError",
    "connect",
    "resolve_backend",
    "IBMRunner",
    "JobRecord",
    "load_job_record",
    "evaluate_on_backend",
    "SubmissionNotConfirmed",
]

TOKEN_ENV = "QISKIT_IBM_TOKEN"
INSTANCE_ENV = "QISKIT_IBM_INSTANCE"
CHANNEL = "ibm_quantum_platform"
JOBS_FILE = "jobs.json"
logger = logging.getLogger("qrnn_qiskit")


class CredentialError(QRNNError):
    """No usable IBM Quantum credentials, or the service could not be created."""


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "<token>")
    return text


def _service_class():
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService


def connect(token: str | None = None, instance: str | None = None, *, environ=None):
    """Create a ``QiskitRuntimeService`` from the first source that has credentials.

    Returns:
        ``(service, source)`` with ``source`` one of ``"token"`` (the argument), ``"QISKIT_IBM_TOKEN"``,
        ``"saved account"``.

    Raises:
        CredentialError: one clear message per failure (no credentials, refused token, malformed
            instance, no network), never containing the token.
    """
    environ = os.environ if environ is None else environ
    if token:
        source = "token"
    elif environ.get(TOKEN_ENV):
        token, source = environ[TOKEN_ENV], TOKEN_ENV
    else:
        source = "saved account"
    if instance is None and source != "saved account":
        instance = environ.get(INSTANCE_ENV) or None
    service_cls = _service_class()
    try:
        if source == "saved account":
            service = service_cls() if instance is None else service_cls(instance=instance)
        else:
            service = service_cls(channel=CHANNEL, token=token, instance=instance)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message
        raise CredentialError(_explain(exc, source, instance, token)) from None
    return service, source


def _explain(exc: Exception, source: str, instance: str | None, token: str | None) -> str:
    from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    detail = _scrub(f"{type(exc).__name__}: {exc}", token)
    if isinstance(exc, AccountNotFoundError):
        return (
            "No IBM Quantum credentials: pass token (and instance), set "
            f"{TOKEN_ENV} (and {INSTANCE_ENV}), or save an account with "
            "QiskitRuntimeService.save_account(token=..., instance=...)."
        )
    if isinstance(exc, InvalidAccountError) or (
        isinstance(exc, ValueError) and "instance" in str(exc).lower()
    ):
        return (
            f"The IBM Quantum instance {instance!r} (from instance or {INSTANCE_ENV}) is malformed or "
            f"not valid for this account; expected the instance CRN or name shown on quantum.cloud.ibm.com. ({detail})"
        )
    if isinstance(exc, IBMNotAuthorizedError) or "401" in str(exc) or "unauthorized" in str(exc).lower():
        return (
            f"IBM Quantum refused the token from {source}: it is wrong, expired or revoked. Create a new "
            f"API key on quantum.cloud.ibm.com and pass it as token or {TOKEN_ENV}."
        )
    if _is_network_error(exc):
        return (
            "Could not reach IBM Quantum (no network or the service is down); nothing was submitted. "
            f"Offline, use a fake backend such as backend fake_torino. ({detail})"
        )
    return f"Could not create the IBM Quantum service from {source}: {detail}"


def _is_network_error(exc: BaseException) -> bool:
    import requests

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def resolve_backend(name: str, service=None):
    """A fake backend object for ``fake_<name>``; ``service.backend(name)`` for ``ibm_<name>``.

    Raises:
        ValueError: for names that are neither, or an ``ibm_*`` name the account cannot use.
    """
    from qrnn_qiskit.circuits.targets import resolve_target

    if not isinstance(name, str) or not (name.startswith("fake_") or name.startswith("ibm_")):
        raise ValueError(
            f"Unknown IBM backend {name!r}; expected 'ibm_<name>' (a device of your account, e.g. ibm_torino) "
            "or 'fake_<name>' (offline, e.g. fake_torino)."
        )
    if name.startswith("fake_"):
        return resolve_target(name).backend
    if service is None:
        raise CredentialError(f"{name} is a live backend and needs an IBM Quantum service (credentials).")
    try:
        return service.backend(name)
    except Exception as exc:  # noqa: BLE001 - QiskitBackendNotFoundError and friends
        try:
            available = sorted(b.name for b in service.backends())
        except Exception:  # noqa: BLE001
            available = []
        listing = f"; this account can use: {', '.join(available)}" if available else ""
        raise ValueError(f"Backend {name!r} is not available ({type(exc).__name__}: {exc}){listing}.") from None


def _is_fake(backend) -> bool:
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return isinstance(backend, FakeBackendV2)


@dataclass
class PreparedCircuit:
    """The ISA circuit of one evaluation shape and its report."""

    circuit: QuantumCircuit
    length: int
    report: dict = field(default_factory=dict)


@dataclass
class JobRecord:
    """What is needed to collect results later: written to ``jobs.json`` before waiting."""

    backend: str
    job_ids: list[str]
    rows: list[int]
    length: int
    shots: int
    neuron_mode: str
    context: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": "qrnn-ibm-jobs",
            "version": 1,
            "backend": self.backend,
            "job_ids": self.job_ids,
            "rows": self.rows,
            "length": self.length,
            "shots": self.shots,
            "neuron_mode": self.neuron_mode,
            "context": self.context,
        }


def load_job_record(path: str | os.PathLike) -> JobRecord:
    """Read a ``jobs.json`` written by :meth:`IBMRunner.save_record`."""
    path = Path(path)
    if path.is_dir():
        path = path / JOBS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise QRNNError(f"No job record at {path}; expected the jobs.json that an evaluation wrote into its out folder.") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise QRNNError(f"{path} is not a readable job record ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != "qrnn-ibm-jobs":
        raise QRNNError(f"{path} is not a qrnn job record (no 'format': 'qrnn-ibm-jobs').")
    if data.get("version") != 1:
        raise QRNNError(f"{path} has job-record version {data.get('version')!r}; this qrnn-qiskit reads version 1.")
    try:
        return JobRecord(
            str(data["backend"]), [str(i) for i in data["job_ids"]], list(data["rows"]), int(data["length"]),
            int(data["shots"]), str(data["neuron_mode"]), dict(data.get("context", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise QRNNError(f"{path} is an incomplete job record ({type(exc).__name__}: {exc}); nothing was fetched.") from None


class IBMRunner(SamplerRunner):
    """Evaluate QRNN circuits on an IBM backend (live or fake) through the runtime sampler.

    A :class:`~qrnn_qiskit.runners.sampler.SamplerRunner` whose circuits are compiled to the
    backend's ISA and whose PUBs go to the runtime's sampler in a ``Batch``, one job per
    ``max_circuits`` rows, with a :class:`JobRecord` to collect them later.

    Args:
        backend: a backend object from :func:`resolve_backend`.
        shots: shots per sequence.
        neuron_mode: ``postselect`` or ``rus[:R]`` (refused on backends without ``if_else``).
        optimization_level: preset pass manager level.
        layout: ``auto``, ``default`` or ``compact`` (see :mod:`qrnn_qiskit.circuits.targets`).
        dynamical_decoupling: enable the sampler's dynamical decoupling (not with control flow).
        twirling: enable gate and measurement twirling.
        seed: simulator seed on fake backends.
        name: the name the user asked for (recorded with the job ids); the backend's by default.
    """

    def __init__(
        self,
        backend,
        *,
        shots: int = 1024,
        neuron_mode: str | NeuronMode = "postselect",
        optimization_level: int = 1,
        layout: str = "auto",
        dynamical_decoupling: bool = False,
        twirling: bool = False,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(None, shots=check_shots(shots), neuron_mode=neuron_mode)
        self.backend = backend
        self.name = name or backend.name
        self.simulated = _is_fake(backend)
        self.optimization_level = optimization_level
        self.layout = layout
        self.dynamical_decoupling = dynamical_decoupling
        self.twirling = twirling
        self.seed = seed
        self._prepared: dict = {}
        self._jobs: dict = {}  # job id -> job object, for jobs submitted by this runner
        limit = None if self.simulated else _backend_limit(backend, "max_shots")
        if limit and self.shots > int(limit):
            raise ValueError(f"{self.name} accepts at most {limit} shots per circuit; got shots={self.shots}.")
        if self.neuron_mode.is_rus and "if_else" not in set(backend.target.operation_names):
            raise ValueError(
                f"{self.name} does not support if_else (dynamic circuits), which rus mode needs; "
                "use neuron_mode 'postselect' on this backend."
            )
        if self.dynamical_decoupling and self.neuron_mode.is_rus:
            raise ValueError(
                "IBM Quantum refuses dynamical decoupling for circuits with control flow, and rus mode "
                "adds if_else blocks: drop dynamical_decoupling or use neuron_mode 'postselect'."
            )

    # ------------------------------------------------------------------------------ circuits
    def prepare(self, config: QRNNConfig, parameters: np.ndarray, length: int) -> PreparedCircuit:
        """Build and transpile the ``length``-step circuit once (cached per shape)."""
        key = (config, length, parameters.tobytes())
        if key in self._prepared:
            return self._prepared[key]
        from qrnn_qiskit.circuits.targets import transpile_report

        circuit = SamplerRunner.circuit(self, config, length, parameters)  # logical; transpiled below
        if circuit.num_qubits > self.backend.num_qubits:
            raise ValueError(f"The circuit needs {circuit.num_qubits} qubits but {self.name} has {self.backend.num_qubits}.")
        report = transpile_report(
            circuit, self.backend, optimization_level=self.optimization_level, layout=self.layout, keep_circuit=True
        )
        isa = report.pop("circuit")
        used = sorted({isa.find_bit(q).index for inst in isa.data for q in inst.qubits})
        report["qubits"] = len(used)
        prepared = PreparedCircuit(isa, length, report)
        self._prepared[key] = prepared
        return prepared

    def _max_rows(self) -> int:
        limit = _backend_limit(self.backend, "max_circuits")
        return limit if limit else 10_000

    def cost(self, prepared: PreparedCircuit, rows: int) -> dict:
        """Circuits, shots and estimated QPU seconds of evaluating ``rows`` sequences."""
        rep_delay = getattr(self.backend, "default_rep_delay", None) or 250e-6
        per_shot = prepared.report.get("duration_seconds", 0.0) + float(rep_delay)
        jobs = math.ceil(rows / self._max_rows())
        return {
            "backend": self.name,
            "circuits": rows,
            "jobs": jobs,
            "shots_per_circuit": self.shots,
            "total_shots": rows * self.shots,
            "estimated_qpu_seconds": round(rows * self.shots * per_shot, 3),
            "estimate_basis": f"shots x (circuit duration {prepared.report.get('duration_seconds', 0.0):.3g} s + repetition delay {float(rep_delay):.3g} s)",
        }

    def sampler_options(self) -> dict:
        """The options handed to the runtime sampler."""
        options = {
            "default_shots": self.shots,
            "dynamical_decoupling": {"enable": bool(self.dynamical_decoupling)},
            "twirling": {"enable_gates": bool(self.twirling), "enable_measure": bool(self.twirling)},
        }
        if self.simulated and self.seed is not None:
            options["simulator"] = {"seed_simulator": int(self.seed)}
        return options

    # ----------------------------------------------------------------------------- submission
    def submit(self, config: QRNNConfig, parameters: np.ndarray, inputs: np.ndarray, *, context: dict | None = None) -> JobRecord:
        """Submit one PUB per job (rows = sequences) in a Batch; returns the job record."""
        from qiskit_ibm_runtime import Batch
        from qiskit_ibm_runtime.executor_sampler import Sampler

        params = config.validate_parameters(parameters)
        inputs = config.validate_tokens(inputs, "inputs")
        length = inputs.shape[1]
        prepared = self.prepare(config, params, length)
        ordered = self.input_values(config, prepared.circuit, inputs)
        chunk = self._max_rows()
        job_ids, rows = [], []
        with Batch(backend=self.backend) as batch:
            sampler = Sampler(mode=batch, options=self.sampler_options())
            for start in range(0, ordered.shape[0], chunk):
                block = ordered[start : start + chunk]
                job = sampler.run([(prepared.circuit, block)])
                self._jobs[job.job_id()] = job
                job_ids.append(job.job_id())
                rows.append(int(block.shape[0]))
        return JobRecord(self.name, job_ids, rows, length, self.shots, str(self.neuron_mode), context or {})

    @staticmethod
    def save_record(record: JobRecord, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOBS_FILE
        atomic_write_text(path, json.dumps(record.to_dict(), indent=2) + "\n")
        return path

    def collect(self, config: QRNNConfig, record: JobRecord, service=None) -> ShotResult:
        """Wait for the record's jobs (submitted here, or fetched by id from ``service``)."""
        jobs = []
        for job_id in record.job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                if service is None:
                    raise QRNNError(
                        f"Job {job_id!r} was not submitted in this process; collecting it needs the "
                        "IBM Quantum service (credentials) of the account that submitted it."
                    )
                try:
                    job = service.job(job_id)
                except Exception as exc:  # noqa: BLE001
                    raise QRNNError(f"Could not fetch job {job_id!r} from IBM Quantum ({type(exc).__name__}: {exc}).") from None
            jobs.append(job)
        parts = []
        for job, rows in zip(jobs, record.rows):
            result = job.result()
            parts.append(self.to_shots(config, result[0], record.length, rows))
        return ShotResult(
            tokens=np.concatenate([p.tokens for p in parts]), neurons_ok=np.concatenate([p.neurons_ok for p in parts])
        )

    def sample(self, config: QRNNConfig, parameters: np.ndarray, inputs: np.ndarray) -> ShotResult:
        """Submit and wait: the :class:`~qrnn_qiskit.runners.sampler.SamplerRunner` interface."""
        record = self.submit(config, parameters, inputs)
        return self.collect(config, record)


def _backend_limit(backend, name: str) -> int | None:
    """``max_shots``/``max_circuits`` of a backend or its configuration, when it states one."""
    value = getattr(backend, name, None)
    if value is None and callable(getattr(backend, "configuration", None)):
        try:
            value = getattr(backend.configuration(), name, None)
        except Exception:  # noqa: BLE001 - fake or partial backends
            value = None
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0 else None


class SubmissionNotConfirmed(QRNNError):
    """A live submission was asked for without ``yes=True``; nothing was submitted."""


_FIGURES = ("two_qubit_gates", "depth", "two_qubit_depth", "qubits", "layout", "layout_strategy",
            "swap_overhead_two_qubit_gates_per_step", "duration_seconds", "success_probability_estimate")


def evaluate_on_backend(
    checkpoint,
    dataset,
    backend: str,
    *,
    split: str = "test",
    limit: int | None = None,
    token: str | None = None,
    instance: str | None = None,
    yes: bool = False,
    out: str | os.PathLike | None = None,
    job_ids: Sequence[str] = (),
    rows: list | None = None,
    source: str | None = None,
    unscored: str = "postselect",
    **runner_options,
) -> dict:
    """Evaluate a :class:`~qrnn_qiskit.training.Checkpoint` on ``ibm_<name>`` or ``fake_<name>``.

    Compiles once (``runner_options``: those of :class:`IBMRunner`), logs the cost (circuits,
    shots, QPU seconds) and the compiled figures, and on a live backend submits only with
    ``yes=True``. With ``job_ids`` (and the job ``rows`` of a record) it collects those jobs
    instead of submitting. The job record goes to ``out/jobs.json`` before waiting (live runs
    default to ``runs/ibm-<backend>-<time>``), the result to ``out/result.json``. ``source``
    names the checkpoint in the record; ``unscored`` how the don't-care steps' shots are scored
    (:func:`~qrnn_qiskit.runners.shots.evaluate_shots`).

    Raises:
        SubmissionNotConfirmed: for a live submission without ``yes`` (the message holds the cost).
        CredentialError, QRNNError, ValueError: as :func:`connect`, :class:`IBMRunner` and collecting say.
    """
    from qrnn_qiskit.runners.shots import evaluate_shots

    live = backend.startswith("ibm_")
    service = connect(token, instance)[0] if live else None
    runner = IBMRunner(resolve_backend(backend, service), name=backend, **runner_options)
    inputs, _ = dataset.split(split).first(limit).engine_arrays()
    cost, figures = _cost_and_figures(runner, checkpoint, inputs, gate=live and not yes and not job_ids,
                                      log=not job_ids)
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
            path = runner.save_record(record, out)
            logger.info("job ids %s saved in %s; collect later with job_ids (--job-id)", record.job_ids, path)
        shots_result = runner.collect(checkpoint.config, record)
    result = evaluate_shots(checkpoint.config, checkpoint.parameters, dataset, shots_result, split=split, limit=limit,
                            neuron_mode=runner.neuron_mode, unscored=unscored)
    result.update({"backend": backend, "job_ids": record.job_ids, "cost": cost, **figures})
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out) / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _cost_and_figures(runner: IBMRunner, checkpoint, inputs: np.ndarray, *, gate: bool, log: bool) -> tuple[dict, dict]:
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
    )
    if gate:
        raise SubmissionNotConfirmed(
            "\n".join(lines) + f"\nNothing was submitted to {runner.name}: review the cost above and pass yes "
            "(--yes) to submit."
        )
    for line in lines if log else ():
        logger.info(line)
    return cost, figures
