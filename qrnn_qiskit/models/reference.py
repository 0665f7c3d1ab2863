"""Import models trained by the reference PyTorch implementation (rvqe, Bausch 2020).

The reference state dict (exported to ``.npz``) has keys such as::

    module.cell.input_layer.{w}.φ      (D,)   module.cell.input_layer.{w}.θ      ()
    module.cell.kernel_layer.{s}.0.θs  (W,)   module.cell.kernel_layer.{s}.{1+w}.φ / .θ
    module.cell.output_layer.{i}.φ     (D,)   module.cell.output_layer.{i}.θ

I, W, S and the degree follow from the shapes; the order is not stored, so it comes from the
caller or a sidecar ``.json`` of the same name (keys ``order``, ``initial_bias``, ...).

The reference's own checkpoints (``checkpoint-*.tar``, written by ``torch.save``) are pickles: a
dict with ``model_state_dict``, ``optimizer_state_dict``, the training ``argparse.Namespace``
(``_original_args``), the RNG state, ``epoch`` and ``best_validation_loss``. They are read with
the optional torch extra through ``torch.load(weights_only=True)``, which builds tensors and plain
containers only; ``argparse.Namespace`` is the one class allowed besides. A file that needs any
other class is refused, not unpickled. Order and bias then come from the stored arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig, num_neuron_weights
from qrnn_qiskit.core.errors import CheckpointError
from qrnn_qiskit.core.io import read_npz
from qrnn_qiskit.core.optionals import require
from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint

__all__ = ["import_reference", "read_reference", "import_reference_npz", "import_reference_torch", "state_dict_to_parameters"]

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
    inputs, outputs, kernel = _layers(state)
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
        return _neuron_block(entry, where, config.num_neuron_weights)

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


def _layers(state: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """The state dict's tensors by layer: input and output neurons by index, kernel entries by
    stage and position.

    Raises:
        CheckpointError: for a key that is none of the reference's.
    """
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
    return inputs, outputs, kernel


def _neuron_block(entry: dict[str, np.ndarray], where: str, num_weights: int) -> np.ndarray:
    """One neuron's weights then bias, checked against ``num_weights``."""
    try:
        phi = np.asarray(entry["φ"], dtype=np.float64).reshape(-1)
        theta = np.asarray(entry["θ"], dtype=np.float64).reshape(-1)
    except KeyError as exc:
        raise CheckpointError(f"{where} lacks its {exc.args[0]} tensor.") from exc
    if phi.size != num_weights or theta.size != 1:
        raise CheckpointError(f"{where} has {phi.size} weights and {theta.size} biases; expected {num_weights} and 1.")
    return np.concatenate([phi, theta])


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
        if not isinstance(settings, dict):
            raise CheckpointError(f"The sidecar {sidecar} holds a JSON {type(settings).__name__}; expected an object "
                                  "of the reference's settings (order, initial_bias, dataset).")
    if order is None:
        order = _sidecar_number(sidecar, settings, "order", 2, int)
    bias = _sidecar_number(sidecar, settings, "initial_bias", math.pi / 2, float)
    config, params = state_dict_to_parameters(state, order=order, bias=bias)
    meta = {"source": str(path.name), "reference_settings": settings}
    if "dataset" in settings:
        meta["dataset"] = settings["dataset"]
    return Checkpoint(config=config, parameters=params, meta=meta)


def _sidecar_number(sidecar: Path, settings: dict, name: str, default, kind):
    value = settings.get(name, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or (kind is int and (value != int(value) or not 1 <= value <= 16)):
        expected = "an integer from 1 to 16" if kind is int else "a finite number"
        raise CheckpointError(f"The sidecar {sidecar} has {name} {value!r}; expected {expected}.")
    return kind(value)


# Settings copied from the reference's argparse Namespace into the checkpoint's metadata.
_SETTINGS = (
    "dataset", "workspace", "stages", "order", "degree", "sentence_length", "batch_size", "num_shards",
    "optimizer", "learning_rate", "weight_decay", "initial_bias", "initial_bias_spread",
    "initial_weights_spread", "initial_unitaries_spread", "seed", "tag",
)


def _is_torch_file(path: Path) -> bool:
    """True for files written by ``torch.save``: by suffix, legacy pickle header, or a zip with data.pkl."""
    if path.suffix.lower() in (".tar", ".pt", ".pth"):
        return True
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head[:1] == b"\x80":
        return True
    if head == b"PK":
        try:
            with zipfile.ZipFile(path) as archive:
                return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _plain(value):
    """A JSON-friendly copy of a stored setting (tensors become numbers or lists)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def import_reference_torch(path: str | os.PathLike, *, order: int | None = None) -> Checkpoint:
    """Read a checkpoint ``.tar`` written by the reference implementation (needs the torch extra).

    Args:
        path: the ``torch.save`` file (zip or legacy format).
        order: neuron order; defaults to the stored arguments' ``order``, else 2.

    Raises:
        MissingOptionalDependency: torch is not installed.
        CheckpointError: unreadable, truncated or foreign files, files holding objects other than
            tensors, containers and ``argparse.Namespace`` (refused unread), or stored arguments
            that disagree with the tensor shapes.
    """
    path = Path(path)
    store = _torch_load(path)
    state = _state_dict(path, store)
    args = store.get("_original_args") if isinstance(store, dict) else None
    settings = {k: _plain(v) for k, v in vars(args).items() if k in _SETTINGS} if args is not None else {}
    for key in ("epoch", "best_validation_loss", "best_character_error_rate"):
        if isinstance(store, dict) and key in store:
            settings[key] = _plain(store[key])
    if order is None:
        order = int(settings.get("order", 2))
    bias = float(settings.get("initial_bias", math.pi / 2))
    config, params = state_dict_to_parameters(state, order=order, bias=bias)
    for name, value in (("workspace", config.workspace), ("stages", config.stages), ("degree", config.degree)):
        if name in settings and settings[name] is not None and int(settings[name]) != value:
            raise CheckpointError(
                f"{path}: the stored arguments say {name}={settings[name]} but the tensors imply {name}={value}; "
                "the file is inconsistent."
            )
    meta = {"source": str(path.name), "reference_settings": settings}
    if settings.get("dataset"):
        meta["dataset"] = settings["dataset"]
    return Checkpoint(config=config, parameters=params, meta=meta)


def _torch_load(path: Path):
    """``torch.load`` with ``weights_only`` (tensors, containers and ``argparse.Namespace`` only)."""
    if not path.is_file():
        raise CheckpointError(f"No reference checkpoint at {path}.")
    require("torch", "Reading the reference implementation's .tar checkpoints")
    import torch

    if not hasattr(torch.serialization, "safe_globals"):
        raise CheckpointError(
            f"torch {torch.__version__} cannot load {path.name} safely (torch.serialization.safe_globals "
            "arrived in torch 2.4); upgrade with pip install 'qrnn-qiskit[torch]'."
        )
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            store = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "Unsupported global" in line), first[0] if first else "")
        raise CheckpointError(
            f"{path} is not a reference checkpoint this tool will read: it is a pickle that needs classes other "
            "than tensors, plain containers and argparse.Namespace, and it was refused without running it "
            f"({detail[:200]}). Export its state dict to .npz with the reference code instead."
        ) from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, zip errors... for damaged files
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated or another format): {type(exc).__name__}: "
            f"{str(exc)[:200]}"
        ) from exc
    return store


def _state_dict(path: Path, store) -> dict[str, np.ndarray]:
    """The model's tensors as float64 arrays by name."""
    if isinstance(store, dict) and "model_state_dict" in store:
        state_dict = store["model_state_dict"]
    elif isinstance(store, dict) and store and all(hasattr(v, "detach") for v in store.values()):
        state_dict = store  # a bare state dict
    else:
        keys = sorted(map(str, store))[:6] if isinstance(store, dict) else type(store).__name__
        raise CheckpointError(
            f"{path} holds no model_state_dict (found {keys}); expected a checkpoint written by the reference "
            "implementation's main.py or a bare state dict."
        )
    return {str(k): np.asarray(v.detach().cpu().numpy(), dtype=np.float64) for k, v in state_dict.items()
            if hasattr(v, "detach")}


def read_reference(path: str | os.PathLike, *, order: int | None = None) -> Checkpoint:
    """Read a reference model from an ``.npz`` state dict or a ``torch.save`` checkpoint.

    Raises:
        CheckpointError: for missing, unsafe, damaged or inconsistent files.
        MissingOptionalDependency: for a ``.tar`` without the torch extra.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No reference model at {path}; expected an .npz state dict or a checkpoint .tar.")
    if _is_torch_file(path):
        return import_reference_torch(path, order=order)
    return import_reference_npz(path, order=order)


def import_reference(file: str | os.PathLike, output: str | os.PathLike | None = None, *, order: int | None = None,
                     overwrite: bool = False) -> Path:
    """Convert a model trained by the reference PyTorch implementation to a qrnn-qiskit checkpoint.

    ``file`` is an ``.npz`` of its state dict (with an optional sidecar ``.json`` of settings) or
    one of its checkpoint ``.tar`` files (torch extra; read with ``weights_only``, never unpickled
    freely). The checkpoint is written atomically to ``output`` (default: ``file`` with the suffix
    ``.qrnn.npz``), which must not exist unless ``overwrite``; returns its path.

    Raises:
        CheckpointError: for missing, unsafe, damaged or inconsistent files.
        FileExistsError: for an existing ``output`` without ``overwrite``.
        MissingOptionalDependency: for a ``.tar`` without the torch extra.
    """
    target = Path(output) if output is not None else Path(file).with_suffix(".qrnn.npz")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it, or another output (-o).")
    checkpoint = read_reference(file, order=order)
    return save_checkpoint(target, checkpoint)
