"""A stand-in for IBM Quantum Platform at qiskit-ibm-runtime's network edge.

``QiskitRuntimeService``, ``IBMBackend``, ``Batch``, the executor ``Sampler``, ``RuntimeJobV2`` and
the result decoders are the real runtime code. Only the two objects that speak HTTP are replaced:

* ``RuntimeClient`` (every REST call of the runtime API: backends, sessions, jobs, results), by a
  client that answers from this in-memory cloud, with backend configurations and properties in
  the server's JSON form (taken from the fake backends' files) and results in the executor's
  server schema (``QuantumProgramResultModel`` v2.0), computed by Aer with the backend's noise;
* ``Account.list_instances`` (the IBM Cloud Global Search call that resolves instances and
  authenticates the token).

Every submitted payload is kept (``cloud.submitted``) decoded from its wire form.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef0123456789abcdef:01234567-89ab-cdef-0123-456789abcdef::"


@dataclass
class Submission:
    """One ``program_run`` as the server received it."""

    program_id: str
    backend: str
    session_id: str | None
    params: dict
    circuits: list
    arguments: list
    shots: int
    options: dict


@dataclass
class FakeCloud:
    backends: dict = field(default_factory=dict)  # name -> fake backend class
    tokens: set = field(default_factory=lambda: {"good-token"})
    submitted: list = field(default_factory=list)
    sessions: list = field(default_factory=list)
    jobs: dict = field(default_factory=dict)
    seen_tokens: list = field(default_factory=list)
    seed: int = 11

    def install(self, monkeypatch) -> None:
        from qiskit_ibm_runtime import qiskit_runtime_service
        from qiskit_ibm_runtime.accounts import account
        from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

        cloud = self

        def list_instances(acct):
            cloud.seen_tokens.append(acct.token)
            if acct.token not in cloud.tokens:
                raise IBMNotAuthorizedError("401 Client Error: Unauthorized for url: https://iam.cloud.ibm.com/identity/token")
            return [{"crn": CRN, "plan": "open", "name": "qrnn-tests", "tags": [], "pricing_type": "free"}]

        monkeypatch.setattr(account.Account, "list_instances", list_instances)
        monkeypatch.setattr(qiskit_runtime_service, "RuntimeClient", lambda params: _Client(cloud, params))

    # ------------------------------------------------------------------ server-side behaviour
    def _backend(self, name):
        if name not in self.backends:
            from qiskit_ibm_runtime.api.exceptions import RequestsApiError

            raise RequestsApiError(f"404 backend {name} not found", status_code=404)
        return self.backends[name]()

    def run(self, program_id, backend_name, params, session_id) -> str:
        from ibm_quantum_schemas.executor.version_2_0 import ParamsModel

        model = ParamsModel.model_validate(params)
        program = model.quantum_program
        circuits = program.circuits.to_python()
        arguments = [item.circuit_arguments.to_numpy() for item in program.items]
        self.submitted.append(
            Submission(program_id, backend_name, session_id, params, circuits, arguments, program.shots,
                       model.options.model_dump())
        )
        job_id = f"job-{len(self.jobs) + 1:04d}"
        self.jobs[job_id] = {
            "backend": backend_name, "session_id": session_id, "program": program_id,
            "result": self._execute(backend_name, model),
        }
        return job_id

    def _execute(self, backend_name, model) -> str:
        import numpy as np
        from ibm_quantum_schemas.common.tensor import CompressedTensorModel
        from ibm_quantum_schemas.executor.version_2_0 import (
            ItemMetadataModel,
            MetadataModel,
            QuantumProgramResultItemModel,
            QuantumProgramResultModel,
        )
        from qiskit.primitives.containers.bindings_array import BindingsArray
        from qiskit_aer.primitives import SamplerV2

        backend = self._backend(backend_name)
        sampler = SamplerV2.from_backend(backend, seed=self.seed)
        program = model.quantum_program
        data = []
        for circuit, item in zip(program.circuits.to_python(), program.items):
            values = item.circuit_arguments.to_numpy()
            bindings = BindingsArray({tuple(circuit.parameters): values}) if circuit.num_parameters else None
            result = sampler.run([(circuit, bindings)], shots=program.shots).result()[0]
            arrays = {key: np.ascontiguousarray(bits.to_bool_array(order="little")) for key, bits in dict(result.data).items()}
            data.append(
                QuantumProgramResultItemModel(
                    results={key: CompressedTensorModel.from_numpy(a) for key, a in arrays.items()},
                    metadata=ItemMetadataModel(),
                )
            )
        out = QuantumProgramResultModel(
            data=data,
            metadata=MetadataModel(chunk_timing=[]),
            passthrough_data=program.passthrough_data,
            semantic_role=program.semantic_role,
        )
        return out.model_dump_json()


class _Client:
    """The runtime API as the client sees it, answered by a :class:`FakeCloud`."""

    _ids = itertools.count(1)

    def __init__(self, cloud: FakeCloud, params) -> None:
        self._cloud = cloud
        self._instance = params.instance
        cloud.seen_tokens.append(params.token)

    def list_backends(self, include_mocks=False):
        return [{"name": name} for name in self._cloud.backends]

    def _raw(self, name, kind):
        backend = self._cloud._backend(name)
        with open(f"{backend.dirname}/{getattr(backend, kind)}") as handle:
            data = json.load(handle)
        data["backend_name"] = name
        return data

    def backend_configuration(self, backend_name, refresh=False, calibration_id=None):
        return self._raw(backend_name, "conf_filename")

    def backend_properties(self, backend_name, datetime=None, calibration_id=None):
        return self._raw(backend_name, "props_filename")

    def backend_status(self, backend_name):
        return {"backend_name": backend_name, "backend_version": "1.0.0", "operational": True,
                "pending_jobs": 0, "status_msg": "active"}

    def cloud_usage(self):
        return {}

    def create_session(self, backend=None, instance=None, max_time=None, mode=None, **kwargs):
        session_id = f"session-{next(self._ids)}"
        self._cloud.sessions.append({"id": session_id, "backend": backend, "mode": mode})
        return {"id": session_id}

    def close_session(self, session_id):
        return None

    def program_run(self, program_id, backend_name, params, image, log_level, session_id, **kwargs):
        job_id = self._cloud.run(program_id, backend_name, params, session_id)
        return {"id": job_id, "backend": backend_name}

    def job_get(self, job_id, exclude_params=True):
        job = self._cloud.jobs.get(job_id)
        if job is None:
            from qiskit_ibm_runtime.api.exceptions import RequestsApiError

            raise RequestsApiError(f"404 Client Error: job {job_id} not found", status_code=404)
        return {
            "id": job_id, "backend": job["backend"], "session_id": job["session_id"],
            "program": {"id": job["program"]}, "state": {"status": "Completed"}, "status": "Completed",
            "created": "2026-11-24T00:00:00Z",
        }

    def job_results(self, job_id):
        return self._cloud.jobs[job_id]["result"]

    def job_metadata(self, job_id):
        return {}
