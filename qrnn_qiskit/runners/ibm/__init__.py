"""IBM Quantum: credentials (:mod:`~qrnn_qiskit.runners.ibm.credentials`), backends by name
(:mod:`~qrnn_qiskit.runners.ibm.backends`), the runner (:mod:`~qrnn_qiskit.runners.ibm.runner`)
and job records (:mod:`~qrnn_qiskit.runners.ibm.jobs`)."""

from __future__ import annotations

from qrnn_qiskit.runners.ibm.backends import resolve_backend
from qrnn_qiskit.runners.ibm.credentials import INSTANCE_ENV, TOKEN_ENV, CredentialError, connect
from qrnn_qiskit.runners.ibm.jobs import JobRecord, load_job_record, save_job_record
from qrnn_qiskit.runners.ibm.runner import IBMRunner, PreparedCircuit

__all__ = ["INSTANCE_ENV", "TOKEN_ENV", "CredentialError", "IBMRunner", "JobRecord", "PreparedCircuit", "connect",
           "load_job_record", "resolve_backend", "save_job_record"]
