"""Sampling the real QRNN circuits on qiskit-aer (mid-circuit measurements included).

:class:`AerRunner` is a :class:`~qrnn_qiskit.runners.sampler.SamplerRunner` over Aer's ``SamplerV2``.

One circuit serves a whole batch: the input bits stay circuit parameters, and Aer's
``SamplerV2`` receives a parameter-value array with one row per sequence (and, for training,
one row per shifted weight vector). Shots are postselected afterwards from their classical bits:
every neuron flag that decides acceptance (:func:`qrnn_qiskit.core.modes.rus_acceptance_mask` in rus
mode) must read 0, and evaluation also keeps only shots whose "don't care" io outcomes equal their
targets, as the reference evaluates.

Speed: with bound weights each parameter block is built as one uniformly controlled RY
(``ucgate`` synthesis: a UCGate, native in Aer) instead of ``1 + D`` multi-controlled rotations that the transpiler
would decompose; gate fusion is forced (Aer fuses only from 14 qubits by default). In rus mode and
with noise the blocks use the ``auto`` synthesis (phase polynomials): Aer 0.18.2 runs a UCGate
inside ``if_else`` wrongly.
"""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel
from qiskit_aer.primitives import SamplerV2

from qrnn_qiskit.circuits.targets import resolve_target
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.runners.sampler import SamplerRunner, check_shots

__all__ = ["AerRunner", "DEVICES"]

DEVICES = ("CPU", "GPU")


class AerRunner(SamplerRunner):
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
        neuron_mode: str | NeuronMode = "postselect",
    ) -> None:
        if device not in DEVICES:
            raise ValueError(f"Unknown Aer device {device!r}; expected one of {DEVICES}.")
        check_shots(shots)
        available = AerSimulator().available_devices()
        if device not in available:
            raise QRNNError(
                f"Aer reports devices {tuple(available)} here, not {device}: device GPU needs the "
                "qiskit-aer-gpu package (pip install qiskit-aer-gpu, replacing qiskit-aer) and a CUDA GPU."
            )
        self.device = device
        self.seed = seed
        self.noise_name = noise
        self._noise_backend = None
        options = {"method": "statevector", "device": device, "fusion_enable": True, "fusion_threshold": 1}
        if noise is not None:
            if not isinstance(noise, str) or not noise.startswith("fake_"):
                raise ValueError(f"Unknown noise model {noise!r}; expected 'fake_<name>', e.g. fake_torino.")
            self._noise_backend = resolve_target(noise).backend
            options["noise_model"] = NoiseModel.from_backend(self._noise_backend)
        self.backend_options = options
        run_options = {} if seed is None else {"seed_simulator": int(seed)}
        sampler = SamplerV2(options={"backend_options": options, "run_options": run_options})
        super().__init__(sampler, shots=shots, neuron_mode=neuron_mode)

    @property
    def label(self) -> str:
        return f"aer ({self.device}" + (f", {self.noise_name}'s noise)" if self.noise_name else ")")

    def circuit_synthesis(self, numeric_weights: bool) -> str:
        # qiskit-aer 0.18.2 executes a multiplexer (UCGate) inside an if_else body wrongly (the
        # same circuit agrees gate for gate with the mc build, which Aer runs correctly), so rus
        # and noisy circuits use the CNOT-count-optimal synthesis (phase polynomials for the paper's
        # shapes: 3.6x faster per shot than one controlled rotation per subset, simple-seq rus:1).
        fast = numeric_weights and self._noise_backend is None and not self.neuron_mode.is_rus
        return "ucgate" if fast else "auto"

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        if self._noise_backend is None and _runs_natively(circuit):
            # Aer executes every operation as built (multiplexer, cry, mcphase, ...); the preset
            # pass manager took 15 s per amplify:3 mnist01 step and changed nothing
            return circuit
        if self._noise_backend is not None:
            basis = [n for n in self._noise_backend.target.operation_names if n not in ("delay", "for_loop", "switch_case")]
            pm = generate_preset_pass_manager(optimization_level=1, basis_gates=basis, seed_transpiler=7)
        else:
            pm = generate_preset_pass_manager(optimization_level=0, backend=AerSimulator(method="statevector"))
        return pm.run(circuit)


def _runs_natively(circuit: QuantumCircuit) -> bool:
    """Whether Aer's statevector simulator executes every operation of ``circuit`` as it is
    (control-flow bodies included)."""
    native = set(AerSimulator(method="statevector").target.operation_names)

    def ok(circ: QuantumCircuit) -> bool:
        for inst in circ.data:
            op = inst.operation
            if op.name not in native:
                return False
            if any(not ok(block) for block in getattr(op, "blocks", ())):
                return False
        return True

    return ok(circuit)
