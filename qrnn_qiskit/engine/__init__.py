"""The exact engine: the circuits' meaning computed exactly, with reverse-mode gradients.

:class:`ExactEngine` is the facade; :class:`EngineSpec` says what it computes and where; the
backends (``numpy``, ``cpu``, ``gpu``) read a :class:`~qrnn_qiskit.engine.plan.StepPlan`.
"""

from __future__ import annotations

from qrnn_qiskit.engine.facade import ExactEngine
from qrnn_qiskit.engine.results import SequenceResult, combine_rows, reference_loss, reference_loss_offset
from qrnn_qiskit.engine.spec import ENGINES, PRECISIONS, EngineSpec

__all__ = ["ENGINES", "PRECISIONS", "EngineSpec", "ExactEngine", "SequenceResult", "combine_rows", "reference_loss",
           "reference_loss_offset"]
