"""The models a run can train: the QRNN, or a classical baseline (:mod:`qrnn_qiskit.models.classical`).

Both kinds of configuration give ``num_parameters``, ``input_width``, ``initial_parameters`` and
``to_dict``; both engines give ``simulate``, ``loss`` and ``loss_and_gradient`` with the exact
engine's meaning, so training, checkpoints and evaluation do not ask which one they hold.
"""

from __future__ import annotations

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine.facade import ExactEngine
from qrnn_qiskit.engine.spec import EngineSpec
from qrnn_qiskit.models.classical import KINDS, LOSSES, ClassicalConfig, ClassicalEngine

__all__ = ["MODELS", "LOSSES", "config_from_dict", "make_engine", "is_qrnn"]

MODELS = ("qrnn", *KINDS)


def config_from_dict(data: dict):
    """The configuration a checkpoint or ``config.json`` describes (``model`` names a baseline)."""
    return ClassicalConfig.from_dict(data) if "model" in data else QRNNConfig.from_dict(data)


def is_qrnn(config) -> bool:
    return isinstance(config, QRNNConfig)


def make_engine(config, engine: str | EngineSpec = "cpu", precision: str = "float64",
                neuron_mode: object = "postselect"):
    """The engine that computes ``config``'s distributions, loss and gradient (for a QRNN, with
    its neurons in ``neuron_mode``, or under the meaning an :class:`EngineSpec` ``engine`` gives)."""
    if is_qrnn(config):
        return ExactEngine(config, engine=engine, precision=precision, neuron_mode=neuron_mode)
    if isinstance(engine, EngineSpec):
        if engine.neuron_mode.kind != "postselect" or engine.unscored != "postselect" or engine.noise is not None:
            raise ValueError(f"A classical {config.kind} baseline has no quantum meaning to choose; got {engine.meaning}.")
        engine, precision = engine.path, engine.precision
    if str(neuron_mode) != "postselect":
        raise ValueError(f"A classical {config.kind} baseline has no quantum neurons; neuron_mode {neuron_mode!r} "
                         "applies to QRNN models only.")
    return ClassicalEngine(config, engine=engine, precision=precision)
