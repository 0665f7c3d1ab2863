"""Running QRNN circuits on IBM Quantum backends through qiskit-ibm-runtime.

The same path serves a live backend (``ibm_<name>``, with an account) and a fake one
(``fake_<name>``, offline): the circuit is built with bound weights and symbolic inputs,
transpiled once to the backend's ISA (preset pass manager, compact or default layout, whichever
needs fewer 2-qubit gates), and submitted to the runtime's current sampler
(:class:`qiskit_ibm_runtime.executor_sampler.Sampler`) in Batch mode as one PUB per job whose
parameter array holds every evaluated sequence. On a fake backend the runtime's local mode runs
the PUB on Aer with the backend's noise model; Aer truncates the simulation to the qubits the
ISA circuit touches.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from qiskit import QuantumCircuit

from qrnn_qiskit.circuits.targets import transpile_report
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.evaluation.shots import ShotResult
from qrnn_qiskit.runners.ibm.backends import backend_limit, is_fake
from qrnn_qiskit.runners.ibm.jobs import JobRecord
from qrnn_qiskit.runners.sampler import SamplerRunner, check_shots

__all__ = ["IBMRunner", "PreparedCircuit", "wait_for_job"]

logger = logging.getLogger("qrnn_qiskit")
#: seconds between status polls of a job being waited for, and between repeated lines of one status
POLL_SECONDS = 10.0
REPEAT_SECONDS = 120.0


def wait_for_job(job, label: str, *, poll_seconds: float | None = None, repeat_seconds: float | None = None) -> None:
    """Wait until ``job`` is done, with a progress line (``qrnn_qiskit`` logger, INFO: the command
    line shows it) when its status changes and every ``repeat_seconds`` while it stays, so that a
    queued job does not sit silent for hours. Jobs without ``done()`` are left to ``result()``."""
    poll = POLL_SECONDS if poll_seconds is None else poll_seconds
    repeat = REPEAT_SECONDS if repeat_seconds is None else repeat_seconds
    started = time.monotonic()
    said, said_at = None, started
    while hasattr(job, "done") and not job.done():
        status = job.status()
        status = str(getattr(status, "name", status))  # a JobStatus (local jobs) or the runtime's string
        now = time.monotonic()
        if status != said or now - said_at >= repeat:
            logger.info("%s: %s, waited %.0f s", label, status, now - started)
            said, said_at = status, now
        time.sleep(poll)
    if said is not None:
        logger.info("%s: done after %.0f s", label, time.monotonic() - started)


@dataclass
class PreparedCircuit:
    """The ISA circuit of one evaluation shape and its report."""

    circuit: QuantumCircuit
    length: int
    report: dict = field(default_factory=dict)


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
        self.simulated = is_fake(backend)
        self.optimization_level = optimization_level
        self.layout = layout
        self.dynamical_decoupling = dynamical_decoupling
        self.twirling = twirling
        self.seed = seed
        self._prepared: dict = {}
        self._jobs: dict = {}  # job id -> job object, for jobs submitted by this runner
        limit = None if self.simulated else backend_limit(backend, "max_shots")
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
        limit = backend_limit(self.backend, "max_circuits")
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
        for k, (job, rows) in enumerate(zip(jobs, record.rows)):
            wait_for_job(job, f"{record.backend}: job {k + 1} of {len(jobs)} ({job.job_id()})")
            result = job.result()
            parts.append(self.to_shots(config, result[0], record.length, rows))
        return ShotResult(
            tokens=np.concatenate([p.tokens for p in parts]), neurons_ok=np.concatenate([p.neurons_ok for p in parts])
        )

    def sample(self, config: QRNNConfig, parameters: np.ndarray, inputs: np.ndarray) -> ShotResult:
        """Submit and wait: the :class:`~qrnn_qiskit.runners.sampler.SamplerRunner` interface."""
        record = self.submit(config, parameters, inputs)
        return self.collect(config, record)
