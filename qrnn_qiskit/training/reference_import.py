"""Import models trained by the reference PyTorch implementation (rvqe, Bausch 2020).

The reference state dict (exported to ``.npz``) has keys such as::

    module.cell.input_layer.{w}.φ      (D,)   module.cell.input_layer.{w}.θ      ()
    module.cell.kernel_layer.{s}.0.θs  (W,)   module.cell.kernel_layer.{s}.{1+w}.φ / .θ
    module.cell.output_layer.{i}.φ     (D,)   module.cell.output_layer.{i}.θ

I, W, S and the degree follow from the shapes; the order is not stored, so it comes from the
caller or a sidecar ``.json`` of the same name (keys ``order``, ``initial_bias``, ...).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ..config import QRNNConfig, num_neuron_weights
from ..exceptions import CheckpointError
from .checkpoint import Checkpoint, read_npz

__all__ = ["import_reference_npz", "state_dict_to_parameters"]

_KEY = re.compile(
    r"^(?:module\.)?cell\.(?:(input_layer|output_layer)\.(\d+)\.(φ|θ)|kernel_layer\.(\d+)\.(\d+)\.(φ|θ|θs))$"
)


def _degree_for(num_sources: int, num_weights: int) -> int:
    for degree in range(1, num_sources + 1):
        if num_neuron_weights(num_sources, degree) == num_weights:
            return degree
    raise CheckpointError(
        f"A neuron has {num_weights} subset weights, which is sum_(j<=d) C({num_sources}, j) for no "
        "degree d; the state dict does not describe a QRNN cell."
    )


def state_dict_to_parameters(
    state: dict[str, np.ndarray], *, order: int = 2, bias: float = math.pi / 2
) -> tuple[QRNNConfig, np.ndarray]:
    """Map a reference state dict to a configuration and a flat parameter vector."""
    inputs: dict[int, dict[str, np.ndarray]] = {}
    outputs: dict[int, dict[str, np.ndarray]] = {}
    kernel: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    unknown = []
    for key, value in state.items():
        match = _KEY.match(key)
        if not match:
            unknown.append(key)
            continue
        layer, idx, name, stage, pos, kname = match.groups()
        if layer == "input_layer":
            inputs.setdefault(int(idx), {})[name] = value
        elif layer == "output_layer":
            outputs.setdefault(int(idx), {})[name] = value
        else:
            kernel.setdefault(int(stage), {}).setdefault(int(pos), {})[kname] = value
    if unknown:
        raise CheckpointError(
            f"Unexpected keys {sorted(unknown)[:5]} in the state dict; expected the reference "
            "implementation's cell.input_layer / cell.kernel_layer / cell.output_layer keys."
        )
    if not inputs or not outputs:
        raise CheckpointError("The state dict has no input_layer or output_layer neurons.")
    workspace, width, stages = len(inputs), len(outputs), len(kernel)
    for name, layer in (("input_layer", inputs), ("output_layer", outputs)):
        if sorted(layer) != list(range(len(layer))):
            raise CheckpointError(f"{name} neurons are not numbered 0..{len(layer) - 1}: {sorted(layer)}.")
    num_weights = int(np.asarray(inputs[0]["φ"]).size)
    degree = _degree_for(workspace + width - 1, num_weights)
    try:
        config = QRNNConfig(
            input_width=width, workspace=workspace, stages=stages, order=order, degree=degree, bias=bias
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"The state dict implies an invalid model: {exc}") from exc

    def neuron(entry: dict[str, np.ndarray], where: str) -> np.ndarray:
        try:
            phi = np.asarray(entry["φ"], dtype=np.float64).reshape(-1)
            theta = np.asarray(entry["θ"], dtype=np.float64).reshape(-1)
        except KeyError as exc:
            raise CheckpointError(f"{where} lacks its {exc.args[0]} tensor.") from exc
        if phi.size != config.num_neuron_weights or theta.size != 1:
            raise CheckpointError(
                f"{where} has {phi.size} weights and {theta.size} biases; expected "
                f"{config.num_neuron_weights} and 1."
            )
        return np.concatenate([phi, theta])

    blocks = [neuron(inputs[w], f"input_layer.{w}") for w in range(workspace)]
    unitaries = []
    for s in range(stages):
        layer = kernel[s]
        if 0 not in layer or "θs" not in layer[0]:
            raise CheckpointError(f"kernel_layer.{s}.0.θs (the work-stage rotations) is missing.")
        angles = np.asarray(layer[0]["θs"], dtype=np.float64).reshape(-1)
        if angles.size != workspace:
            raise CheckpointError(f"kernel_layer.{s}.0.θs has {angles.size} angles; expected {workspace}.")
        unitaries.append(angles)
        blocks += [neuron(layer.get(1 + w, {}), f"kernel_layer.{s}.{1 + w}") for w in range(workspace)]
    blocks += [neuron(outputs[i], f"output_layer.{i}") for i in range(width)]
    params = np.concatenate(blocks + unitaries)
    return config, config.validate_parameters(params)


def import_reference_npz(path: str | os.PathLike, *, order: int | None = None) -> Checkpoint:
    """Read a reference ``.npz`` state dict (and its sidecar ``.json`` if present).

    Args:
        path: the ``.npz`` file.
        order: neuron order; defaults to the sidecar's ``order``, else 2.

    Raises:
        CheckpointError: for an unreadable file or a state dict that is not a QRNN cell.
    """
    path = Path(path)
    state = read_npz(path, "reference state dict")
    settings: dict = {}
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            settings = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CheckpointError(f"The sidecar {sidecar} is not valid JSON: {exc}") from exc
    if order is None:
        order = int(settings.get("order", 2))
    bias = float(settings.get("initial_bias", math.pi / 2))
    config, params = state_dict_to_parameters(state, order=order, bias=bias)
    meta = {"source": str(path.name), "reference_settings": settings}
    if "dataset" in settings:
        meta["dataset"] = settings["dataset"]
    return Checkpoint(config=config, parameters=params, meta=meta)
