"""Training on Aer with gradients from shots: parameter shift (exact rule, all shifted weight
vectors of a step in one Aer run) or SPSA (two evaluations per step).

The loss is the reference loss computed from *estimated* joint probabilities (see
:mod:`qrnn_qiskit.engine.shift`): the fraction of shots whose neurons succeeded, whose earlier io
outcomes equal the targets and whose step ``t`` reads ``y``.

Limitation, measured: the parameter-shift gradient is ``sum_n c_n <Q(shifted_n), dL/dQ(Q)>`` and
``dL/dQ`` holds ``1/Q`` terms (the loss normalises each step), so where the joint probabilities
are small its shot estimate is dominated by noise. A 2-step simple-bits model (W=2, S=1, order 1)
at initialisation keeps about 5e-4 of its shots at step 1, and its estimated gradient was 3.6x
off the exact one at 3,000 shots (16 shift rows per weight). The same task with S=0 (acceptance
about 0.3) trains with 1,024 shots; SPSA, which only needs loss differences, trained the S=1 model. Weights stay circuit parameters, so the
circuit is transpiled once per sequence length and every evaluation is a row of one PUB.
"""

from __future__ import annotations

import time

import numpy as np
from qiskit.circuit import ParameterVector

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.shift import loss_gradient_from_joint, parameter_shift_loss_and_gradient, shift_plan
from qrnn_qiskit.evaluation.shots import ShotResult
from qrnn_qiskit.runners.aer import AerRunner
from qrnn_qiskit.runners.aer_deferred import DeferredJoints
from qrnn_qiskit.runners.shots import parameter_order, row_columns

__all__ = ["AerGradient", "GRADIENTS", "SAMPLINGS"]

GRADIENTS = ("param-shift", "spsa")
SAMPLINGS = ("per-step", "per-shot")


class AerGradient:
    """``(params, inputs, targets, scored) -> (loss, gradient)`` estimated from Aer shots.

    Args:
        config: the model.
        runner: the :class:`AerRunner` (shots, seed, neuron mode, noise, device).
        method: ``param-shift`` or ``spsa``.
        spsa_c, spsa_gamma: SPSA perturbation ``c / (k + 1) ** gamma``.
        seed: randomness of the SPSA perturbations.
        sampling: ``None`` (default): ``per-step`` where it applies and pays (noiseless
            postselected circuits whose density matrix has no more entries than the shots have
            amplitudes), else ``per-shot``. ``per-step``: each
            row's exact ``Q`` from one density-matrix run with the measurements deferred, and the
            runner's shots drawn per step from it (:mod:`qrnn_qiskit.runners.aer_deferred`; the same
            expected loss and gradient, 43x faster a step on the simple-bits model); ``per-shot``:
            every shot through the mid-circuit measurements (what a device does; the only way with
            noise or rus neurons, which fall back to it, as do models too wide for the density
            matrix to pay: ``2**(n+2) > shots``, 9 qubits and more at 1,024 shots).
    """

    def __init__(self, config: QRNNConfig, runner: AerRunner, method: str = "param-shift", *, spsa_c: float = 0.1,
                 spsa_gamma: float = 0.101, seed: int | None = 0, sampling: str | None = None) -> None:
        if method not in GRADIENTS:
            raise ValueError(f"Unknown gradient method {method!r}; expected one of {GRADIENTS}.")
        if sampling is not None and sampling not in SAMPLINGS:
            raise ValueError(f"Unknown sampling {sampling!r}; expected one of {SAMPLINGS} (or None: the cheaper).")
        self.config, self.runner, self.method = config, runner, method
        possible = getattr(runner, "noise_name", None) is None and runner.neuron_mode.kind == "postselect" \
            and 16 * 4 ** (config.num_qubits + 1) <= _DENSITY_LIMIT
        if sampling == "per-step" and not possible:
            raise ValueError(f"sampling 'per-step' needs a noiseless postselected model of at most 12 qubits; this runner "
                             f"has noise {getattr(runner, 'noise_name', None)!r}, neuron mode {runner.neuron_mode} and "
                             f"the model {config.num_qubits} qubits. Use 'per-shot'.")
        if sampling is None:
            sampling = "per-step" if possible and _density_pays(config.num_qubits, runner.shots) else "per-shot"
        self.sampling = sampling
        self._deferred = DeferredJoints(config, self._circuit, device=runner.device, seed=runner.seed) \
            if self.sampling == "per-step" else None
        self.engine = ExactEngine(config)
        self.spsa_c, self.spsa_gamma = spsa_c, spsa_gamma
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        self._circuits: dict[int, object] = {}

    def _circuit(self, steps: int):
        if steps not in self._circuits:
            weights = ParameterVector("w", self.config.num_parameters)
            self._circuits[steps] = self.runner.circuit(self.config, steps, weights)
        return self._circuits[steps]

    def joints(self, vectors: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Estimated ``Q`` for each weight vector: ``(N, B, T, 2**I)``, all rows in one Aer run."""
        if self._deferred is not None:
            return self._deferred.sampled(vectors, inputs, targets, self.runner.shots)
        cfg = self.config
        batch, steps = inputs.shape
        circuit = self._circuit(steps)
        values = parameter_order(circuit, row_columns(cfg, vectors, inputs))
        # Bind in Qiskit, one PUB per row, all in one Aer run: qiskit-aer 0.18.2 returned wrong
        # distributions when it bound these circuits' weight parameters from a value array itself
        # (input-bit arrays bind correctly), see the closing note of the Aer issue.
        parameters = list(circuit.parameters)
        result = self.runner.run([circuit.assign_parameters(dict(zip(parameters, row))) for row in values])
        tokens, ok = [], []
        for pub_result in result:
            shots = self.runner.to_shots(cfg, pub_result, steps)
            tokens.append(shots.tokens)
            ok.append(shots.neurons_ok)
        shots = ShotResult(tokens=np.concatenate(tokens), neurons_ok=np.concatenate(ok))  # one row per PUB
        joint = shots.joint_probabilities(np.tile(targets, (vectors.shape[0], 1)), cfg.num_outcomes)
        return joint.reshape(vectors.shape[0], batch, steps, cfg.num_outcomes)

    def evaluations_per_step(self, steps: int) -> int:
        """Weight vectors evaluated per training step (each one row per sequence)."""
        if self.method == "spsa":
            return 2
        return 1 + shift_plan(self.engine, np.zeros(self.config.num_parameters), steps)[0].shape[0]

    def __call__(self, params, inputs, targets, scored):
        self.calls += 1
        width = self.config.input_width
        if self.method == "spsa":
            k = self.calls - 1
            c = self.spsa_c / (k + 1) ** self.spsa_gamma
            delta = self.rng.choice([-1.0, 1.0], size=params.shape)
            joints = self.joints(np.stack([params + c * delta, params - c * delta]), inputs, targets)
            plus = loss_gradient_from_joint(_floor(joints[0]), targets, scored, width)[0]
            minus = loss_gradient_from_joint(_floor(joints[1]), targets, scored, width)[0]
            return 0.5 * (plus + minus), (plus - minus) / (2 * c) * delta
        return parameter_shift_loss_and_gradient(
            self.engine, params, inputs, targets, scored,
            joint_fn=lambda vectors: self.joints(vectors, inputs, targets), floor=_FLOOR,
        )

    def estimate_seconds(self, inputs: np.ndarray, targets: np.ndarray, probe_rows: int = 4) -> float:
        """Seconds per training step, from timing one weight vector and ``probe_rows`` of them
        (after a warm-up run that builds and transpiles the circuit, once per run): a run's fixed
        cost plus its cost a row, so that a run of hundreds of cheap rows is not taken for hundreds
        of one-row runs."""
        zeros = np.zeros((max(2, probe_rows), self.config.num_parameters))
        self.joints(zeros[:1], inputs, targets)
        times = []
        for rows in (1, len(zeros)):
            start = time.perf_counter()
            self.joints(zeros[:rows], inputs, targets)
            times.append(time.perf_counter() - start)
        per_row = max(times[1] - times[0], 0.0) / (len(zeros) - 1)
        fixed = max(times[0] - per_row, 0.0)
        return fixed + per_row * self.evaluations_per_step(inputs.shape[1])


#: the largest density matrix (bytes) the per-step sampling builds a row (13 qubits with the
#: reject qubit: 1 GiB); wider models sample per shot, whose memory grows as 2**qubits
_DENSITY_LIMIT = 2**30


def _density_pays(qubits: int, shots: int) -> bool:
    """Whether one density-matrix run a row costs less than ``shots`` statevector shots: its
    ``4**(n+1)`` entries against ``shots * 2**n`` amplitudes (Aer spent 20-30 ns an entry or
    amplitude and gate on both at 4-5 qubits; measured 43x faster a step at 4 qubits and 1,024
    shots, and minutes a row at the paper's 10-qubit simple-seq, where shots win)."""
    return 4 ** (qubits + 1) <= shots * 2**qubits


_FLOOR = 1e-12  # added to estimated joints: a step that kept no shot must not divide by zero


def _floor(joint: np.ndarray) -> np.ndarray:
    return joint + _FLOOR
