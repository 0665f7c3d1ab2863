"""IBM Quantum credentials: ``token``/``instance`` arguments, then ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE``,
then the account saved with ``QiskitRuntimeService.save_account``. The token is never printed,
logged or written: error texts from the service are scrubbed of it."""

from __future__ import annotations

import os

from qrnn_qiskit.core.errors import QRNNError

__all__ = ["CHANNEL", "INSTANCE_ENV", "TOKEN_ENV", "CredentialError", "connect", "scrub"]

TOKEN_ENV = "QISKIT_IBM_TOKEN"
INSTANCE_ENV = "QISKIT_IBM_INSTANCE"
CHANNEL = "ibm_quantum_platform"


class CredentialError(QRNNError):
    """No usable IBM Quantum credentials, or the service could not be created."""


def scrub(text: str, secret: str | None) -> str:
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

    detail = scrub(f"{type(exc).__name__}: {exc}", token)
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
    # imported here: every `qrnn` command imports this module, and requests took 0.1 s of that
    import requests

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
