"""The QRNN as a PyTorch module (torch extra): ``pip install 'qrnn-qiskit[torch]'``.

:class:`QRNNModule` holds the weights as one ``torch.nn.Parameter`` and returns the step
distributions of a batch; any torch loss on them trains it with any torch optimiser, scheduler or
trainer (Lightning). The forward and backward passes are the exact engine's
(:meth:`~qrnn_qiskit.engine.ExactEngine.simulate` and :meth:`~qrnn_qiskit.engine.ExactEngine.vjp`):
the gradient of whatever loss torch puts on the distributions, through the circuit's meaning, with
no autograd graph through the quantum state. :func:`reference_loss` is the paper's loss in torch::

    import torch
    from qrnn_qiskit.core.config import QRNNConfig
    from qrnn_qiskit.torch import QRNNModule, reference_loss

    model = QRNNModule(QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1), seed=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    out = model(inputs, targets)                      # out.probabilities: (B, T, 2**I)
    loss = reference_loss(out.probabilities, targets, scored)
    loss.backward(); optimiser.step()
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.results import reference_loss_offset
from qrnn_qiskit.engine.spec import EngineSpec

__all__ = ["QRNNModule", "QRNNOutput", "reference_loss"]


class QRNNOutput(NamedTuple):
    """``probabilities`` ``(B, T, 2**I)`` (differentiable); ``acceptance`` ``(B, T)``, the
    probability that each step's neurons accept (constants for the loss)."""

    probabilities: torch.Tensor
    acceptance: torch.Tensor


class _Distributions(torch.autograd.Function):
    """The engine's step distributions and acceptances; backward is its vector-Jacobian product."""

    @staticmethod
    def forward(ctx, weights, engine, inputs, targets):
        params = weights.detach().cpu().numpy().astype(np.float64)
        result = engine.distributions(params, inputs, targets)
        ctx.engine, ctx.params, ctx.inputs, ctx.targets = engine, params, inputs, targets
        probabilities = torch.as_tensor(result.probabilities, dtype=weights.dtype, device=weights.device)
        acceptance = torch.as_tensor(result.neuron_acceptance, dtype=weights.dtype, device=weights.device)
        ctx.mark_non_differentiable(acceptance)
        return probabilities, acceptance

    @staticmethod
    def backward(ctx, grad_probabilities, _grad_acceptance):
        upstream = grad_probabilities.detach().cpu().numpy().astype(np.float64)
        grad, _ = ctx.engine.vjp(ctx.params, ctx.inputs, ctx.targets, upstream)
        return torch.as_tensor(grad, dtype=grad_probabilities.dtype, device=grad_probabilities.device), None, None, None


class QRNNModule(torch.nn.Module):
    """A QRNN whose weights are one ``torch.nn.Parameter`` (the flat layout of
    :mod:`qrnn_qiskit.core.config`).

    Args:
        config: the model's sizes.
        parameters: initial weights; else drawn as ``qrnn train`` draws them (``seed`` and the spreads).
        engine, precision, neuron_mode, unscored, noise: the exact engine's path and meaning
            (:class:`~qrnn_qiskit.engine.spec.EngineSpec`; ``noise`` a ``NoiseSpec`` or its rates);
            the distributions are teacher forced, or every step measured with ``unscored="measure"``.
            The backward pass runs on the numpy or density path (the compiled kernels fuse the
            reference loss; :meth:`~qrnn_qiskit.engine.ExactEngine.vjp`).
        seed, bias_spread, weights_spread, unitaries_spread: the initial draw.
    """

    def __init__(self, config: QRNNConfig, parameters=None, *, engine: str = "cpu", precision: str = "float64",
                 neuron_mode: str = "postselect", unscored: str = "postselect", noise=None, seed: int = 82727,
                 bias_spread: float = 0.1, weights_spread: float = 0.01, unitaries_spread: float = 0.01) -> None:
        super().__init__()
        self.config = config
        self.engine = ExactEngine(config, EngineSpec.parse(engine, precision, neuron_mode, unscored, noise))
        if parameters is None:
            parameters = config.initial_parameters(bias_spread=bias_spread, weights_spread=weights_spread,
                                                   unitaries_spread=unitaries_spread, seed=seed)
        values = torch.as_tensor(np.asarray(parameters, dtype=np.float64), dtype=torch.float64)
        if values.shape != (config.num_parameters,):
            raise ValueError(f"parameters must be {config.num_parameters} numbers for this model, got shape "
                             f"{tuple(values.shape)}.")
        self.weights = torch.nn.Parameter(values.clone())

    def forward(self, inputs, targets) -> QRNNOutput:
        """The step distributions of ``inputs`` ``(B, T)`` tokens, each step postselected on its
        ``targets`` token (teacher forcing) unless the module measures every step."""
        inputs = np.asarray(torch.as_tensor(inputs).cpu().numpy(), dtype=np.int64)
        targets = np.asarray(torch.as_tensor(targets).cpu().numpy(), dtype=np.int64)
        return QRNNOutput(*_Distributions.apply(self.weights, self.engine, inputs, targets))


def reference_loss(probabilities: torch.Tensor, targets, scored) -> torch.Tensor:
    """The paper's loss in torch: cross-entropy of the scored steps' distributions used as logits,
    averaged over sequences and scored steps, minus its offset ``-1 + ln(2**I - 1 + e)`` (what
    :meth:`~qrnn_qiskit.engine.ExactEngine.loss_and_gradient` computes)."""
    scored = torch.as_tensor(np.asarray(scored, dtype=bool))
    targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    logits = probabilities[:, scored].reshape(-1, probabilities.shape[-1])
    input_width = int(round(np.log2(probabilities.shape[-1])))
    return torch.nn.functional.cross_entropy(logits, targets[:, scored].reshape(-1)) - reference_loss_offset(input_width)
