"""Classical recurrent baselines (LSTM, Elman RNN) trained and scored exactly like the QRNN.

``qrnn train --model lstm --hidden 10`` trains an LSTM on the same datasets, with the same
loss, optimisers, run folders, metrics, checkpoints and evaluation as the QRNN (the ``torch``
extra). The network reads each token one-hot (``2**I`` inputs), and a linear layer turns its hidden
state into ``2**I`` logits whose softmax is the step's outcome distribution; that distribution
takes the place of the QRNN's measured io distribution everywhere: the reference loss
(``logsumexp(p) - p[target] - offset``, the same number a QRNN reports), sampled accuracy,
expected accuracy. The paper's DNA baselines (one-hot 8-dim inputs; LSTM hidden 10 and RNN
hidden 22, 888 parameters each) are ``--model lstm --hidden 10`` and ``--model rnn --hidden 22``
on a 3-bit dataset.

Parameters are one flat float64 vector, torch's ``parameters()`` order (LSTM or RNN weights and
biases, then the output layer's weight and bias), so checkpoints stay plain ``.npz`` arrays and
the project's optimisers, clipping and data-parallel code apply unchanged. Computation runs in
float64 on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.config import check_parameters, check_tokens
from qrnn_qiskit.engine.results import (
    SequenceResult,
    draw_outcomes,
    reference_loss_offset,
    scored_mask,
    step_mask,
    validate_batch,
)

__all__ = ["ClassicalConfig", "ClassicalEngine", "KINDS", "LOSSES", "check_loss"]

KINDS = ("lstm", "rnn")
#: the training losses: the reference's (every model), or the cross-entropy of a classical network's logits
LOSSES = ("reference", "cross-entropy")


def check_loss(loss: str) -> None:
    """Raises ValueError unless ``loss`` is one of :data:`LOSSES`."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(repr(k) for k in LOSSES)}, got {loss!r}.")


@dataclass(frozen=True)
class ClassicalConfig:
    """An LSTM or Elman RNN over ``input_width``-bit tokens with ``hidden`` units."""

    kind: str
    hidden: int
    input_width: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model must be one of qrnn, {', '.join(KINDS)}, got {self.kind!r}.")
        for name in ("hidden", "input_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    @property
    def num_outcomes(self) -> int:
        return 2**self.input_width

    @property
    def num_parameters(self) -> int:
        """``g (n h + h h + 2 h) + (h n + n)`` with ``g`` = 4 gates (LSTM) or 1 (RNN), ``n = 2**I``."""
        n, h = self.num_outcomes, self.hidden
        gates = 4 if self.kind == "lstm" else 1
        return gates * (n * h + h * h + 2 * h) + h * n + n

    def to_dict(self) -> dict:
        return {"model": self.kind, "hidden": self.hidden, "input_width": self.input_width}

    @classmethod
    def from_dict(cls, data: dict) -> ClassicalConfig:
        return cls(kind=data["model"], hidden=int(data["hidden"]), input_width=int(data["input_width"]))

    def validate_parameters(self, parameters: object) -> np.ndarray:
        return check_parameters(parameters, self.num_parameters, self)

    def initial_parameters(self, *, bias_spread: float = 0.1, weights_spread: float = 0.01,
                           unitaries_spread: float = 0.01, seed=None) -> np.ndarray:
        """torch's default initialisation: every parameter uniform in ``±1/sqrt(hidden)`` (the
        QRNN's spreads do not apply and are ignored)."""
        bound = 1.0 / math.sqrt(self.hidden)
        return np.random.default_rng(seed).uniform(-bound, bound, self.num_parameters)

    def validate_tokens(self, tokens: object, name: str = "tokens") -> np.ndarray:
        return check_tokens(tokens, self.input_width, name)


class ClassicalEngine:
    """The :class:`~qrnn_qiskit.engine.ExactEngine` interface for a classical network.

    Raises:
        MissingOptionalDependency: without torch (the ``torch`` extra).
    """

    def __init__(self, config: ClassicalConfig, engine: str = "cpu", precision: str = "float64") -> None:
        optionals.require("torch", f"--model {config.kind}")
        if engine == "gpu" or precision != "float64":
            raise ValueError(f"--model {config.kind} runs in float64 on the CPU; drop engine={engine!r} / "
                             f"precision={precision!r}.")
        import torch

        self.config = config
        self._torch = torch
        n, h = config.num_outcomes, config.hidden
        cell = torch.nn.LSTM if config.kind == "lstm" else torch.nn.RNN
        self._rnn = cell(input_size=n, hidden_size=h, batch_first=True, dtype=torch.float64)
        self._out = torch.nn.Linear(h, n, dtype=torch.float64)
        self._params = list(self._rnn.parameters()) + list(self._out.parameters())
        assert sum(p.numel() for p in self._params) == config.num_parameters

    # ------------------------------------------------------------------ forward
    def _load(self, params: np.ndarray) -> None:
        torch = self._torch
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.from_numpy(np.array(params, dtype=np.float64)), self._params)

    def _logits(self, params, inputs, grad: bool):
        torch = self._torch
        self._load(params)
        for p in self._params:
            p.requires_grad_(grad)
            p.grad = None
        x = torch.nn.functional.one_hot(torch.from_numpy(inputs), self.config.num_outcomes).to(torch.float64)
        hidden, _ = self._rnn(x)
        return self._out(hidden)

    def _distribution(self, params, inputs, grad: bool):
        return self._torch.softmax(self._logits(params, inputs, grad), dim=-1)

    def simulate(self, parameters, inputs, targets=None, *, sample=None, seed=None):
        """Per-step distributions and outcomes: the target where given and not sampled, else a draw
        (outcomes do not feed back: the next step reads the next input token)."""
        parameters, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        batch, steps = inputs.shape
        with self._torch.no_grad():
            probs = self._distribution(parameters, inputs, grad=False).numpy()
        draw = np.ones((batch, steps), bool) if targets is None else np.broadcast_to(
            step_mask(sample, steps, "sample", batch=batch), (batch, steps))
        rng = np.random.default_rng(seed)
        outcomes = np.array(targets if targets is not None else np.zeros((batch, steps), np.int64))
        for t in np.flatnonzero(draw.any(axis=0)):  # as the exact engine draws: once per such step
            outcomes[:, t] = np.where(draw[:, t], draw_outcomes(probs[:, t], rng.random(batch)), outcomes[:, t])
        taken = np.take_along_axis(probs, outcomes[..., None], axis=2)[..., 0]
        return SequenceResult(probs, outcomes, taken, np.ones((batch, steps)))

    def loss(self, parameters, inputs, targets, scored, loss: str = "reference") -> float:
        return self.loss_and_gradient(parameters, inputs, targets, scored, gradient=False, loss=loss)[0]

    def loss_and_gradient(self, parameters, inputs, targets, scored, gradient: bool = True, loss: str = "reference"):
        """The loss on the network's distributions and its gradient (torch autograd): ``reference``
        (the QRNN's, on the probabilities as logits) or ``cross-entropy`` (``-log p[target]``, on
        the network's logits)."""
        check_loss(loss)
        torch = self._torch
        parameters, inputs, targets = validate_batch(self.config, parameters, inputs, targets)
        scored = scored_mask(scored, inputs.shape[1])
        logits = self._logits(parameters, inputs, grad=gradient)
        probs = torch.softmax(logits, dim=-1)
        tgt = torch.from_numpy(targets[:, scored])[..., None]
        if loss == "cross-entropy":
            log_p = torch.log_softmax(logits[:, torch.from_numpy(scored)], dim=-1)
            loss = -torch.gather(log_p, -1, tgt)[..., 0].mean()
        else:
            sel = probs[:, torch.from_numpy(scored)]
            terms = torch.logsumexp(sel, dim=-1) - torch.gather(sel, -1, tgt)[..., 0]
            loss = terms.mean() - reference_loss_offset(self.config.input_width)
        grad = None
        if gradient:
            loss.backward()
            grad = torch.nn.utils.parameters_to_vector([p.grad for p in self._params]).detach().numpy().copy()
        p = probs.detach().numpy()
        taken = np.take_along_axis(p, targets[..., None], axis=2)[..., 0]
        return float(loss.detach()), grad, SequenceResult(p, targets.copy(), taken, np.ones(inputs.shape))
