"""Running the real circuits: one runner over any ``BaseSamplerV2`` (:class:`SamplerRunner`),
Aer (:mod:`.aer`, :mod:`.aer_gradient`) and IBM Quantum (:mod:`.ibm`); bits to shots in :mod:`.shots`."""

from __future__ import annotations

from qrnn_qiskit.runners.sampler import SamplerRunner

__all__ = ["SamplerRunner"]
