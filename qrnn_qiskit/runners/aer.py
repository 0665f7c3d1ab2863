"""Sampling the real QRNN circuits on qiskit-aer (mid-circuit measurements included).

One circuit serves a whole batch: the input bits stay circuit parameters, and Aer's
``SamplerV2`` receives a parameter-value array with one row per sequence (and, for training,
one row per shifted weight vector). Shots are postselected afterwards from their classical bits:
every neuron flag that decides acceptance (:func:`qrnn_qiskit.circuits.rus.acceptance_mask` in rus
mode) must read 0, and evaluation also keeps only shots whose "don't care" io outcomes equal their
targets, as the reference evaluates.

Speed: with bound weights each parameter block is built as one uniformly controlled RY
(``ucgate`` synthesis: a UCGate, native in Aer) instead of ``1 + D`` multi-controlled rotations that the transpiler
would decompose; gate fusion is forced (Aer fuses only from 14 qubits by default). In rus mode and
with noise the blocks use the ``auto`` synthesis (phase polynomials): Aer 0.18.2 runs a UCGate
inside ``if_else`` wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from ..circuits import qrnn_sequence
from ..circuits.rus import acceptance_mask, parse_neuron_mode
from ..config import QRNNConfig
from ..exceptions import QRNNError

__all__ = ["AerRunner", "ShotResult", "DEVICES"]

DEVICES = ("CPU", "GPU")


@dataclass(frozen=True)
class ShotResult:
    """Shots of ``B`` sequences: io tokens per step and whether each shot's neurons all succeeded.

    Attributes:
        tokens: ``(B, shots, T)`` io outcome of every step (token order, lane 0 = MSB).
        neurons_ok: ``(B, shots, T)``: every acceptance-deciding flag of step ``t`` read 0.
    """

    tokens: np.ndarray
    neurons_ok: np.ndarray

    @property
    def shots(self) -> int:
        return self.tokens.shape[1]

    def accepted(self, targets: np.ndarray | None = None, postselect: np.ndarray | None = None) -> np.ndarray:
        """``(B, shots)`` mask: all neurons succeeded at every step and, where ``postselect``
        (``(B, T)`` or ``(T,)``) is set, the io outcome equals ``targets``."""
        ok = self.neurons_ok.all(axis=2)
        if postselect is not None:
            mask = np.broadcast_to(np.asarray(postselect, bool), (self.tokens.shape[0], self.tokens.shape[2]))
            agree = (self.tokens == np.asarray(targets)[:, None, :]) | ~mask[:, None, :]
            ok &= agree.all(axis=2)
        return ok

    def joint_probabilities(self, targets: np.ndarray, num_outcomes: int) -> np.ndarray:
        """Estimate of ``Q[b, t, y]``: neurons of steps ``<= t`` succeed, io outcomes of steps ``< t``
        equal the targets, and step ``t`` reads ``y`` (see :mod:`qrnn_qiskit.engine.shift`)."""
        batch, shots, steps = self.tokens.shape
        agree = self.tokens == np.asarray(targets)[:, None, :]
        prefix = np.ones((batch, shots), bool)
        joint = np.zeros((batch, steps, num_outcomes))
        for t in range(steps):
            alive = prefix & self.neurons_ok[:, :, t]
            for y in range(num_outcomes):
                joint[:, t, y] = (alive & (self.tokens[:, :, t] == y)).sum(axis=1) / shots
            prefix = alive & agree[:, :, t]
        return joint


class AerRunner:
    """Runs QRNN circuits on Aer's statevector simulator through its ``SamplerV2``.

    Args:
        device: ``"CPU"`` or ``"GPU"`` (needs qiskit-aer-gpu and a CUDA device).
        noise: ``None`` or ``"fake_<name>"``: the noise model of a qiskit-ibm-runtime fake backend
            (circuits are then transpiled to that backend's basis gates, on logical qubits).
        shots: shots per sequence.
        seed: simulator seed (``int`` or ``None``).
        neuron_mode: ``postselect`` or ``rus[:R]``.

    Raises:
        ValueError: for an unknown device or noise model, or shots <= 0.
        QRNNError: when ``device="GPU"`` but Aer has no GPU support here.
    """

    def __init__(
        self,
        *,
        device: str = "CPU",
        noise: str | None = None,
        shots: int = 1024,
        seed: int | None = None,
        neuron_mode: str = "postselect",
    ) -> None:
        from qiskit_aer import AerSimulator

        if device not in DEVICES:
            raise ValueError(f"Unknown Aer device {device!r}; expected one of {DEVICES}.")
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots <= 0:
            raise ValueError(f"shots must be a positive integer, got {shots!r}.")
        available = AerSimulator().available_devices()
        if device not in available:
            raise QRNNError(
                f"Aer reports devices {tuple(available)} here, not {device}: --device GPU needs the "
                "qiskit-aer-gpu package (pip install qiskit-aer-gpu, replacing qiskit-aer) and a CUDA GPU."
            )
        self.device = device
        self.shots = int(shots)
        self.seed = seed
        self.mode, self.retries = parse_neuron_mode(neuron_mode)
        self.noise_name = noise
        self._noise_backend = None
        options = {"method": "statevector", "device": device, "fusion_enable": True, "fusion_threshold": 1}
        if noise is not None:
            from ..circuits.targets import resolve_target

            if not isinstance(noise, str) or not noise.startswith("fake_"):
                raise ValueError(f"Unknown noise model {noise!r}; expected 'fake_<name>', e.g. fake_torino.")
            from qiskit_aer.noise import NoiseModel

            self._noise_backend = resolve_target(noise).backend
            options["noise_model"] = NoiseModel.from_backend(self._noise_backend)
        self.backend_options = options

    # -------------------------------------------------------------------------------- circuits
    def circuit(self, config: QRNNConfig, length: int, weights) -> tuple[QuantumCircuit, ParameterVector]:
        """The circuit run for ``length`` steps: inputs symbolic; weights bound or symbolic."""
        inputs = ParameterVector("x", length * config.input_width)
        numeric = not isinstance(weights, ParameterVector)
        # qiskit-aer 0.18.2 executes a multiplexer (UCGate) inside an if_else body wrongly (the
        # same circuit agrees gate for gate with the mc build, which Aer runs correctly), so rus
        # and noisy circuits use the CNOT-count-optimal synthesis (phase polynomials for the paper's
        # shapes: 3.6x faster per shot than one controlled rotation per subset, simple-seq rus:1).
        fast = numeric and self._noise_backend is None and self.mode == "postselect"
        synthesis = "ucgate" if fast else "auto"
        circuit = qrnn_sequence(
            config, length, weights=weights, inputs=inputs, neuron_mode=self.mode, retries=self.retries, synthesis=synthesis
        )
        return self._transpile(circuit), inputs

    def _transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_aer import AerSimulator

        if self._noise_backend is not None:
            basis = [n for n in self._noise_backend.target.operation_names if n not in ("delay", "for_loop", "switch_case")]
            pm = generate_preset_pass_manager(optimization_level=1, basis_gates=basis, seed_transpiler=7)
        else:
            pm = generate_preset_pass_manager(optimization_level=0, backend=AerSimulator(method="statevector"))
        return pm.run(circuit)

    # -------------------------------------------------------------------------------- sampling
    def run(self, pubs: list):
        """Run PUBs (bound circuits or ``(circuit, values)``) in one Aer job; returns the result."""
        from qiskit_aer.primitives import SamplerV2

        run_options = {} if self.seed is None else {"seed_simulator": int(self.seed)}
        sampler = SamplerV2(options={"backend_options": self.backend_options, "run_options": run_options})
        return sampler.run(pubs, shots=self.shots).result()

    def to_shots(self, config: QRNNConfig, pub_result, length: int) -> ShotResult:
        out = pub_result.data.out.to_bool_array(order="little")  # (..., shots, T*I)
        flags = pub_result.data.flag.to_bool_array(order="little")
        return shots_from_bits(config, out, flags, length, self.mode, self.retries)

    def sample(self, config: QRNNConfig, parameters: np.ndarray, inputs: np.ndarray) -> ShotResult:
        """Shots for ``B`` sequences of tokens ``inputs`` ``(B, T)`` at bound ``parameters``."""
        params = config.validate_parameters(parameters)
        inputs = config.validate_tokens(inputs, "inputs")
        if inputs.ndim != 2:
            raise ValueError(f"inputs must have shape (batch, steps), got {inputs.shape}.")
        length = inputs.shape[1]
        circuit, _ = self.circuit(config, length, params)
        values = config.token_to_bits(inputs).reshape(inputs.shape[0], -1).astype(float)
        order = _parameter_order(circuit, {"x": values})
        result = self.run([(circuit, order)])
        return self.to_shots(config, result[0], length)


def shots_from_bits(config: QRNNConfig, out: np.ndarray, flags: np.ndarray, length: int, mode: str, retries: int) -> ShotResult:
    """A :class:`ShotResult` from the ``out`` and ``flag`` registers as boolean arrays
    ``(..., shots, bits)`` (little-endian bit order), for circuits in ``mode`` with ``retries``."""
    bits = out.reshape(out.shape[:-1] + (length, config.input_width)).astype(np.int64)
    weights = 1 << np.arange(config.input_width - 1, -1, -1)
    tokens = (bits * weights).sum(axis=-1)
    # the step's acceptance-deciding flags (all of them in postselect mode) must all read 0
    per_neuron = acceptance_mask(config.order, retries) if mode == "rus" else np.ones(2**config.order - 1, bool)
    per_step = np.tile(per_neuron, config.num_neurons)
    shaped = flags.reshape(flags.shape[:-1] + (length, per_step.size))
    return ShotResult(tokens=tokens, neurons_ok=~np.any(shaped[..., per_step], axis=-1))


def _parameter_order(circuit: QuantumCircuit, columns: dict[str, np.ndarray]) -> np.ndarray:
    """Arrange value columns in the order of ``circuit.parameters`` (vector name -> (rows, n))."""
    rows = next(iter(columns.values())).shape[0]
    values = np.empty((rows, circuit.num_parameters))
    for k, parameter in enumerate(circuit.parameters):
        vector = parameter.vector.name
        values[:, k] = columns[vector][:, parameter.index]
    return values


def evaluate_shots(
    config: QRNNConfig,
    parameters: np.ndarray,
    dataset,
    runner,
    *,
    split: str = "test",
    limit: int | None = None,
    seed: int | None = 0,
) -> dict:
    """Evaluate on sampled shots of the real circuits (Aer or any runner with ``sample``).

    Shots are accepted when every deciding neuron flag reads 0 and every "don't care" io outcome
    equals its target (as the reference evaluates). ``accuracy`` is the fraction of accepted shots
    whose scored outcomes all equal the targets, averaged over sequences that kept any shot;
    ``expected_accuracy`` is the exact engine's for the same sequences.

    Raises:
        QRNNError: when no shot at all is accepted (with the engine's expected acceptance).
    """
    from ..engine import ExactEngine

    inputs, targets = dataset.split(split).first(limit).engine_arrays()
    scored = dataset.scored()
    dont_care = dataset.ignored(targets)
    shots = runner.sample(config, parameters, inputs)
    accepted = shots.accepted(targets, postselect=dont_care)
    engine = ExactEngine(config)
    exact = engine.simulate(parameters, inputs, targets)
    per_step = exact.neuron_acceptance * np.where(dont_care, exact.outcome_probability, 1.0)
    expected_acceptance = float(np.exp(np.log(per_step).sum(axis=1)).mean())
    kept = accepted.sum(axis=1)
    if kept.sum() == 0:
        rus = getattr(runner, "mode", "postselect") == "rus"
        raise QRNNError(
            f"No shot was accepted out of {accepted.size}: the exact engine expects an acceptance of "
            f"{expected_acceptance:.3e} per shot for these sequences"
            + (" in postselect mode (rus accepts more, but noise and the retries' extra gates cost)" if rus else "")
            + f", so about {1 / max(expected_acceptance, 1e-300):.3g} shots per accepted one. Use more shots, "
            + ("more retries (rus:R)" if rus else "--neuron-mode rus")
            + ", or a shorter sequence."
        )
    right = (shots.tokens[:, :, scored] == targets[:, None, scored]).all(axis=2) & accepted
    has = kept > 0
    accuracy = float((right.sum(axis=1)[has] / kept[has]).mean())
    expected = np.prod(exact.outcome_probability[:, scored], axis=1)
    distributions = []
    for t in np.flatnonzero(scored):
        counts = np.zeros(config.num_outcomes)
        for y in range(config.num_outcomes):
            counts[y] = ((shots.tokens[:, :, t] == y) & accepted).sum()
        distributions.append({"step": int(t), "distribution": (counts / max(counts.sum(), 1)).tolist()})
    return {
        "dataset": dataset.name,
        "split": split,
        "sequences": int(inputs.shape[0]),
        "shots": int(shots.shots),
        "accepted_shots": int(kept.sum()),
        "acceptance": float(kept.sum() / accepted.size),
        "expected_acceptance": expected_acceptance,
        "accuracy": accuracy,
        "expected_accuracy": float(expected.mean()),
        "expected_accuracy_of_kept_sequences": float(expected[has].mean()),
        "sequences_with_accepted_shots": int(has.sum()),
        "scored_step_distributions": distributions,
    }
