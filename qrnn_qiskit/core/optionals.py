"""Optional dependencies: one place that says which extra provides what."""

from __future__ import annotations

import importlib.util

from qrnn_qiskit.core.errors import QRNNError

__all__ = ["MissingOptionalDependency", "require", "available"]

_EXTRAS = {
    "sklearn": ("scikit-learn", "digits"),
    "matplotlib": ("matplotlib", "plot"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "torch": ("torch", "torch"),
    "ray": ("ray", "distributed"),
}


class MissingOptionalDependency(QRNNError, ImportError):
    """An optional package needed by a feature is not installed."""


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(module: str, feature: str) -> None:
    """Raise :class:`MissingOptionalDependency` naming the pip command if ``module`` is absent."""
    if not available(module):
        package, extra = _EXTRAS.get(module, (module, module))
        raise MissingOptionalDependency(
            f"{feature} needs the optional package {package}; install it with "
            f"pip install 'qrnn-qiskit[{extra}]' (or pip install {package})."
        )
