"""The QRNN as a qiskit-machine-learning ``NeuralNetwork`` (qml extra): ``pip install 'qrnn-qiskit[qml]'``.

:class:`QRNNNetwork` maps a batch of token sequences ``(N, T)`` to the outcome distribution of their
last step ``(N, 2**I)``, with the QRNN's parameters as its weights; forward and backward are the
exact engine's, so ``NeuralNetworkClassifier`` and ``TorchConnector`` run on it. The earlier steps
are postselected on ``teacher`` tokens, as the paper trains: the next input token (``"next"``, for
sequence tasks such as simple-bits) or one fixed token (``0`` for MNIST's pixel steps), or measured
and discarded with ``unscored="measure"``. :class:`ReferenceLoss` is the paper's loss as a
qiskit-machine-learning ``Loss``, so a classifier fits what ``qrnn train`` fits.

Why not ``SamplerQNN`` on the circuit itself: its forward pass is the distribution over *every*
classical bit of a shot, with no postselection, so the neuron flags and the postselected steps are
outcomes like any other (Aer's sampler then returns a 2**(bits)-way distribution, and Qiskit's
reference ``StatevectorSampler`` refuses mid-circuit measurements). The QRNN's meaning, a
distribution conditioned on accepted flags and steps, is what the exact engine computes.
"""

from __future__ import annotations

import numpy as np
from qiskit_machine_learning.neural_networks import NeuralNetwork
from qiskit_machine_learning.utils.loss_functions import Loss

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.results import reference_loss_offset
from qrnn_qiskit.engine.spec import EngineSpec

__all__ = ["QRNNNetwork", "ReferenceLoss"]


class QRNNNetwork(NeuralNetwork):
    """Sequences of ``length`` tokens in, their last step's distribution out (see the module).

    Args:
        config: the model's sizes; its ``num_parameters`` are the network's weights.
        length: tokens per input sequence (the network's ``num_inputs``).
        teacher: what the earlier steps are postselected on: ``"next"`` (the next input token) or a token.
        engine, precision, neuron_mode, unscored, noise: the exact engine's path and meaning.
    """

    def __init__(self, config: QRNNConfig, length: int, *, teacher: str | int = "next", engine: str = "cpu",
                 precision: str = "float64", neuron_mode: str = "postselect", unscored: str = "postselect",
                 noise=None) -> None:
        if teacher != "next" and not (isinstance(teacher, int) and 0 <= teacher < config.num_outcomes):
            raise ValueError(f"teacher must be 'next' or a token in 0..{config.num_outcomes - 1}, got {teacher!r}.")
        super().__init__(num_inputs=length, num_weights=config.num_parameters, sparse=False,
                         output_shape=config.num_outcomes, input_gradients=False)
        self.config, self.teacher = config, teacher
        self.engine = ExactEngine(config, EngineSpec.parse(engine, precision, neuron_mode, unscored, noise))

    def _sequences(self, input_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs = np.rint(np.asarray(input_data, dtype=float)).astype(np.int64).reshape(-1, self.num_inputs)
        targets = np.zeros_like(inputs)
        targets[:, :-1] = inputs[:, 1:] if self.teacher == "next" else self.teacher
        return inputs, targets

    def _forward(self, input_data, weights) -> np.ndarray:
        inputs, targets = self._sequences(input_data)
        return self.engine.distributions(np.asarray(weights, float), inputs, targets).probabilities[:, -1]

    def _backward(self, input_data, weights) -> tuple[None, np.ndarray]:
        inputs, targets = self._sequences(input_data)
        jacobian = np.zeros((inputs.shape[0], self.config.num_outcomes, self.num_weights))
        for k in range(self.config.num_outcomes):  # one vector-Jacobian product per output
            upstream = np.zeros(inputs.shape + (self.config.num_outcomes,))
            upstream[:, -1, k] = 1.0
            jacobian[:, k], _ = self.engine.vjp_rows(np.asarray(weights, float), inputs, targets, upstream)
        return None, jacobian


class ReferenceLoss(Loss):
    """The paper's loss per sample: the cross-entropy of the distribution used as logits,
    ``logsumexp(p) - p . target``, minus its offset ``-1 + ln(K - 1 + e)`` (``target`` one-hot)."""

    def evaluate(self, predict: np.ndarray, target: np.ndarray) -> np.ndarray:
        self._validate_shapes(predict, target)
        predict, target = np.atleast_2d(predict), np.atleast_2d(target)
        top = predict.max(axis=1, keepdims=True)
        lse = np.log(np.exp(predict - top).sum(axis=1)) + top[:, 0]
        offset = reference_loss_offset(int(round(np.log2(predict.shape[1]))))
        return (lse - np.einsum("ij,ij->i", predict, target) - offset).reshape(-1, 1)

    def gradient(self, predict: np.ndarray, target: np.ndarray) -> np.ndarray:
        self._validate_shapes(predict, target)
        predict, target = np.atleast_2d(predict), np.atleast_2d(target)
        soft = np.exp(predict - predict.max(axis=1, keepdims=True))
        return soft / soft.sum(axis=1, keepdims=True) * target.sum(axis=1, keepdims=True) - target
