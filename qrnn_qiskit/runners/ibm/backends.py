"""IBM backends by name: a fake backend object for ``fake_<name>`` (offline), the account's device for
``ibm_<name>``, and what a backend says of its limits."""

from __future__ import annotations

import numpy as np

from qrnn_qiskit.circuits.targets import resolve_target
from qrnn_qiskit.runners.ibm.credentials import CredentialError

__all__ = ["backend_limit", "is_fake", "resolve_backend"]


def resolve_backend(name: str, service=None):
    """A fake backend object for ``fake_<name>``; ``service.backend(name)`` for ``ibm_<name>``.

    Raises:
        ValueError: for names that are neither, or an ``ibm_*`` name the account cannot use.
    """
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


def is_fake(backend) -> bool:
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return isinstance(backend, FakeBackendV2)


def backend_limit(backend, name: str) -> int | None:
    """``max_shots``/``max_circuits`` of a backend or its configuration, when it states one."""
    value = getattr(backend, name, None)
    if value is None and callable(getattr(backend, "configuration", None)):
        try:
            value = getattr(backend.configuration(), name, None)
        except Exception:  # noqa: BLE001 - fake or partial backends
            value = None
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0 else None
