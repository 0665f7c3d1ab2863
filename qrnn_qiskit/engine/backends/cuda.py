"""The GPU backend of the exact engine (``engine="gpu"``; the ``gpu`` extra).

Selected with ``ExactEngine(config, engine="gpu")`` or ``--engine gpu``. Without the extra, or
without a CUDA device, it stops with an error that says which is missing and how to fix it. The
kernels themselves (:mod:`~qrnn_qiskit.engine.backends.cuda_kernels`) import numba's CUDA target,
so they are imported here only once a device has answered.
"""

from __future__ import annotations

import os

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.optionals import MissingOptionalDependency, available
from qrnn_qiskit.engine.plan import StepPlan

__all__ = ["NoGPUError", "cuda_backend", "require_gpu"]


class NoGPUError(QRNNError):
    """``engine="gpu"`` was asked for on a machine without a usable CUDA device."""


def require_gpu() -> None:
    """Raise unless numba's CUDA target is installed and a CUDA device answers.

    ``NUMBA_ENABLE_CUDASIM=1`` (numba's CUDA simulator, which runs the kernels on the CPU, slowly)
    counts as a device: the tests use it to check the GPU kernels where no GPU exists.
    """
    if not available("numba") or not _cuda_module_present():
        raise MissingOptionalDependency(
            "engine 'gpu' needs numba's CUDA target; install it with pip install 'qrnn-qiskit[gpu]' "
            "(numba-cuda with the CUDA 12 runtime wheels), or use engine 'cpu'."
        )
    from numba import cuda

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return
    try:
        usable = cuda.is_available()
    except Exception as exc:  # the driver can fail in many ways; say it, do not crash
        raise NoGPUError(f"engine 'gpu' found no usable CUDA device ({exc}); use engine 'cpu'.") from None
    if not usable:
        raise NoGPUError(
            "engine 'gpu' found no CUDA device (numba.cuda.is_available() is False: no NVIDIA GPU or driver on "
            "this machine); use engine 'cpu', which runs the same computation on the CPU."
        )


def _cuda_module_present() -> bool:
    try:
        import numba.cuda  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_backend(plan: StepPlan, precision: str = "float64"):
    """The GPU backend for ``plan``; raises :class:`MissingOptionalDependency` or :class:`NoGPUError`."""
    require_gpu()
    from qrnn_qiskit.engine.backends.cuda_kernels import CudaBackend

    return CudaBackend(plan, precision)
