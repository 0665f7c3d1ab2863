"""OpenQASM export of QRNN circuits, with a sidecar that restores parameter names.

OpenQASM 3 identifiers cannot contain brackets, so Qiskit writes ``ParameterVector`` elements
such as ``w[0]`` as ``_w_0_``. :func:`export_qasm` writes ``FILE`` and ``FILE.json``; the sidecar
maps each declared input back to its Qiskit name and records the model (``metadata["qrnn"]``),
and :func:`load_qasm` applies it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.circuit import Parameter

from .._io import atomic_write_text

__all__ = ["export_qasm", "load_qasm", "SIDECAR_SUFFIX"]

SIDECAR_SUFFIX = ".json"
_INPUT_DECL = re.compile(r"^input\s+float\[64\]\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", re.MULTILINE)
_CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "box"}


def export_qasm(circuit: QuantumCircuit, path: str | os.PathLike, *, fmt: str = "qasm3") -> Path:
    """Write ``circuit`` as OpenQASM (``fmt`` ``"qasm3"`` or ``"qasm2"``) plus its JSON sidecar.

    Raises:
        ValueError: for an unknown format, or OpenQASM 2 asked of a circuit with control flow or
            unbound parameters (neither can be written in OpenQASM 2).
    """
    if fmt not in ("qasm3", "qasm2"):
        raise ValueError(f"Unknown export format {fmt!r}; expected 'qasm3' or 'qasm2'.")
    if fmt == "qasm2":
        flow = sorted({i.operation.name for i in circuit.data} & _CONTROL_FLOW)
        if flow:
            raise ValueError(
                f"OpenQASM 2 cannot express control flow, and this circuit contains {flow}; "
                "export it with --format qasm3."
            )
        if circuit.parameters:
            raise ValueError(
                f"OpenQASM 2 cannot declare free parameters, and this circuit has "
                f"{circuit.num_parameters}; bind them (build from a checkpoint and a sample) or "
                "export with --format qasm3."
            )
        text = qasm2.dumps(circuit)
        names: dict[str, str] = {}
    else:
        text = qasm3.dumps(circuit)
        declared = _INPUT_DECL.findall(text)
        ordered = [p.name for p in circuit.parameters]
        if len(declared) != len(ordered):
            raise ValueError(
                f"The OpenQASM 3 text declares {len(declared)} inputs for {len(ordered)} circuit "
                "parameters; cannot map parameter names."
            )
        names = dict(zip(declared, ordered))
    path = Path(path)
    sidecar = {
        "format": fmt,
        "qrnn": dict(circuit.metadata.get("qrnn", {})) if circuit.metadata else {},
        "parameters": names,
    }
    atomic_write_text(path, text)
    atomic_write_text(path.with_name(path.name + SIDECAR_SUFFIX), json.dumps(sidecar, indent=1) + "\n")
    return path


def load_qasm(path: str | os.PathLike) -> QuantumCircuit:
    """Load an exported file, restoring parameter names and metadata from its sidecar if present.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not valid OpenQASM or the sidecar does not match it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No OpenQASM file at {path}.")
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("OPENQASM 2"):
            circuit = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        else:
            circuit = qasm3.loads(text)
    except Exception as exc:  # the importers raise several unrelated types
        raise ValueError(f"{path} is not valid OpenQASM: {exc}") from exc
    sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar_path.is_file():
        return circuit
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        names = sidecar["parameters"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"The sidecar {sidecar_path} is not a qrnn export sidecar: {exc}") from exc
    present = {p.name: p for p in circuit.parameters}
    missing = sorted(set(names) - set(present))
    if missing:
        raise ValueError(
            f"The sidecar {sidecar_path} names inputs {missing[:5]} that {path} does not declare; "
            "the two files do not belong together."
        )
    if names:
        circuit = circuit.assign_parameters(
            {present[q]: Parameter(name) for q, name in names.items()}, inplace=False
        )
    circuit.metadata = {**(circuit.metadata or {}), "qrnn": sidecar.get("qrnn", {})}
    return circuit
