"""Running the real circuits: one runner over any ``BaseSamplerV2`` (:class:`SamplerRunner`),
Aer (:mod:`.aer`, :mod:`.aer_training`) and IBM Quantum (:mod:`.ibm`); shot handling in :mod:`.shots`."""

from __future__ import annotations

from qrnn_qiskit.runners.sampler import SamplerRunner
from qrnn_qiskit.runners.shots import ShotResult, evaluate_shots

__all__ = ["SamplerRunner", "ShotResult", "evaluate_shots"]
