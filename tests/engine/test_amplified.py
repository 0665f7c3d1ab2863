"""Amplified neurons (neuron mode ``amplify:L``): the fixed-point schedule, the tiny exact neuron
simulation, and the engine's amplified meaning against the gate-level circuit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.quantum_info import Statevector
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import qrnn_sequence, quantum_neuron
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.modes import NeuronMode
from qrnn_qiskit.core.schedule import FixedPointSchedule, chebyshev
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.amplified import amplified_activation, neuron_map


class TestSchedule:
    def test_delta_from_chebyshev_by_hand(self):
        # p_min = 1/2: gamma = 1/sqrt(2), delta = 1 / T_L(sqrt 2); T_3(x) = 4x^3 - 3x, T_5 = 16x^5 - 20x^3 + 5x
        r2 = math.sqrt(2.0)
        assert FixedPointSchedule(3).delta == pytest.approx(1 / (4 * r2**3 - 3 * r2), rel=1e-12)
        assert FixedPointSchedule(5).delta == pytest.approx(1 / (16 * r2**5 - 20 * r2**3 + 5 * r2), rel=1e-12)
        assert chebyshev(5, np.array([0.3]))[0] == pytest.approx(16 * 0.3**5 - 20 * 0.3**3 + 5 * 0.3, abs=1e-14)

    def test_angles_by_definition(self):
        s = FixedPointSchedule(7)
        root = math.sqrt(1 - s.gamma**2)
        for j, alpha in enumerate(s.alphas, start=1):
            # alpha_j = 2 arccot(tan(2 pi j / L) sqrt(1 - gamma^2)), arccot in (0, pi)
            assert math.tan(alpha / 2) == pytest.approx(1 / (math.tan(2 * math.pi * j / 7) * root), rel=1e-10)
            assert 0 < alpha < 2 * math.pi
        assert s.betas == tuple(-a for a in reversed(s.alphas))

    @pytest.mark.parametrize("bad", [1, 2, 4, 0, -3])
    def test_rejects_even_or_small(self, bad):
        with pytest.raises(ValueError, match="odd integer >= 3"):
            FixedPointSchedule(bad)

    def test_neuron_mode_spelling(self):
        assert str(NeuronMode.parse("amplify")) == "amplify:5"
        assert NeuronMode.parse("amplify:7").uses == 7
        assert NeuronMode.parse("amplify:3").flags_per_neuron(3) == 3
        with pytest.raises(ValueError, match="odd number L >= 3.*amplify:4"):
            NeuronMode.parse("amplify:4")
        with pytest.raises(ValueError, match="amplify' or 'amplify:L'"):
            NeuronMode.parse("amplify:x")


class TestNeuronMap:
    @pytest.mark.parametrize("uses", [3, 5, 7])
    def test_order_one_success_is_the_chebyshev_formula(self, uses):
        # order 1: the attempt succeeds with p = cos^4 + sin^4 of Theta/2 for every target state
        theta = np.random.default_rng(uses).uniform(0, 2 * np.pi, 50)
        a, b = amplified_activation(theta, 1, uses)
        p = np.cos(theta / 2) ** 4 + np.sin(theta / 2) ** 4
        schedule = FixedPointSchedule(uses)
        np.testing.assert_allclose(np.abs(a) ** 2 + np.abs(b) ** 2, schedule.success(p), atol=1e-12, rtol=0)
        assert np.all(np.abs(a) ** 2 + np.abs(b) ** 2 >= 1 - schedule.delta**2 - 1e-12)

    @pytest.mark.parametrize("order", [1, 2, 3])
    def test_unamplified_attempt_projects_to_postselect_at_order_one(self, order):
        theta = np.linspace(0, 2 * np.pi, 9)
        mat, _ = neuron_map(theta, 1, None)
        np.testing.assert_allclose(mat[:, 0, 0].real, np.cos(theta / 2) ** 2, atol=1e-14)
        np.testing.assert_allclose(mat[:, 2, 0].real, np.sin(theta / 2) ** 2, atol=1e-14)

    @pytest.mark.parametrize("order,uses", [(1, 3), (2, 3), (2, 5), (3, 3)])
    def test_derivative_equals_finite_differences(self, order, uses):
        theta = np.random.default_rng(order * 10 + uses).uniform(0, 2 * np.pi, 7)
        _, _, da, db = amplified_activation(theta, order, uses, derivative=True)
        h = 1e-4  # fourth-order central differences: truncation ~ h^4 times a modest fifth derivative
        (a2, b2), (a1, b1), (a_1, b_1), (a_2, b_2) = (amplified_activation(theta + k * h, order, uses) for k in (2, 1, -1, -2))
        np.testing.assert_allclose(da, (-a2 + 8 * a1 - 8 * a_1 + a_2) / (12 * h), atol=1e-9, rtol=0)
        np.testing.assert_allclose(db, (-b2 + 8 * b1 - 8 * b_1 + b_2) / (12 * h), atol=1e-9, rtol=0)

    def test_phase_depends_on_the_angle(self):
        # the amplified factor is complex with a Theta-dependent phase: not a rescaled postselection
        theta = np.linspace(0.2, np.pi - 0.2, 11)
        a, b = amplified_activation(theta, 1, 7)
        phases = np.angle(a / np.cos(theta / 2) ** 2)
        assert np.ptp(phases) > 0.05


def _amplified_block_success(order: int, uses: int, theta: float, target_state: np.ndarray) -> float:
    """Statevector of a bound one-source amplified neuron: probability that every ancilla reads 0."""
    # source |1>, weights (phi, bias) chosen so that Theta = pi/2 + phi + theta_bias = theta
    circuit = quantum_neuron(1, order=order, degree=1, weights=[theta - math.pi / 2 - 0.3, 0.3],
                             neuron_mode=f"amplify:{uses}")
    body = circuit.copy_empty_like()
    for inst in circuit.data:
        if inst.operation.name not in ("measure", "reset"):
            body.append(inst)
    init = np.kron(np.kron(np.eye(1 << order)[0], target_state), [0.0, 1.0])  # qubits: src, target, anc
    state = Statevector(init).evolve(body.remove_final_measurements(inplace=False))
    anc = list(range(2, 2 + order))
    return float(state.probabilities(anc)[0])


class TestGateLevel:
    @pytest.mark.parametrize("order", [1, 2, 3])
    def test_blocks_reach_the_fixed_point_bound(self, order):
        uses = 5 if order < 3 else 3
        schedule = FixedPointSchedule(uses)
        rng = np.random.default_rng(order)
        worst = 1.0
        for theta in rng.uniform(0, 2 * np.pi, 4):
            psi = rng.normal(size=2) + 1j * rng.normal(size=2)
            psi /= np.linalg.norm(psi)
            success = _amplified_block_success(order, uses, theta, psi)
            a, b = amplified_activation(theta, order, uses)
            # the engine's map of the target, [[A, -B], [B, A]]: order 1 is oblivious (a multiple of a
            # rotation); nested levels leave A and B with slightly different phases
            expected = np.linalg.norm(np.array([[a, -b], [b, a]]) @ psi) ** 2
            assert success == pytest.approx(expected, abs=1e-10)
            if order == 1:
                assert success == pytest.approx(abs(a) ** 2 + abs(b) ** 2, abs=1e-12)
            worst = min(worst, success)
        # one level: exactly >= 1 - delta^2; an outer level's attempt can dip below p = 1/2 by the
        # inner levels' O(delta^2) residue (measured worst: 1.05 delta^2 at order 2, L=5; 1.35 at 3, L=3)
        bound = 1 - schedule.delta**2 if order == 1 else 1 - 1.5 * schedule.delta**2
        assert worst >= bound

    @pytest.mark.parametrize("seed", range(6))
    def test_engine_equals_projected_statevector(self, seed):
        rng = np.random.default_rng(100 + seed)
        input_width = int(rng.integers(1, 3))
        workspace = int(rng.integers(1, 3))
        cfg = QRNNConfig(input_width=input_width, workspace=workspace, stages=int(rng.integers(0, 2)),
                         order=int(rng.integers(1, 3)), degree=int(rng.integers(1, min(2, input_width + workspace - 1) + 1)))
        uses = 3
        length = 2
        params = rng.normal(0.0, 1.0, cfg.num_parameters)
        inputs = rng.integers(0, cfg.num_outcomes, length)
        targets = rng.integers(0, cfg.num_outcomes, length)
        bits = cfg.token_to_bits(inputs).reshape(-1).astype(float)
        circuit = qrnn_sequence(cfg, length, weights=params, inputs=bits, neuron_mode=f"amplify:{uses}")
        reference = run_postselected(circuit, [int(t) for t in targets], cfg.input_width)
        result = ExactEngine(cfg, neuron_mode=f"amplify:{uses}").simulate(params, inputs[None], targets[None])
        np.testing.assert_allclose(result.probabilities[0], reference.probabilities, atol=1e-10, rtol=0)
        np.testing.assert_allclose(result.outcome_probability[0], reference.outcome_probability, atol=1e-10, rtol=0)
        np.testing.assert_allclose(result.neuron_acceptance[0], reference.neuron_acceptance, atol=1e-10, rtol=0)
        assert result.neuron_acceptance.min() > 0.5  # amplified: most shots survive every neuron


class TestEngine:
    def test_gradient_equals_finite_differences(self):
        cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
        rng = np.random.default_rng(3)
        params = rng.normal(size=cfg.num_parameters)
        inputs, targets = rng.integers(0, 4, (3, 4)), rng.integers(0, 4, (3, 4))
        scored = np.array([False, True, False, True])
        engine = ExactEngine(cfg, neuron_mode="amplify:3")
        loss, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
        h = 1e-6
        fd = np.array([(engine.loss(params + e, inputs, targets, scored) - engine.loss(params - e, inputs, targets, scored)) / (2 * h)
                       for e in np.eye(cfg.num_parameters) * h])
        np.testing.assert_allclose(grad, fd, atol=1e-8, rtol=0)
        assert np.abs(grad).max() > 1e-3

    def test_differs_from_postselect(self):
        cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=2)
        params = cfg.initial_parameters(seed=2)
        inputs = np.array([[0, 1, 1]])
        post = ExactEngine(cfg).simulate(params, inputs, inputs)
        amp = ExactEngine(cfg, neuron_mode="amplify:3").simulate(params, inputs, inputs)
        assert np.abs(post.probabilities - amp.probabilities).max() > 1e-4
        assert amp.neuron_acceptance.min() > 0.9 > post.neuron_acceptance.max()

    def test_modes_the_engine_refuses_or_moves(self):
        cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
        assert ExactEngine(cfg, neuron_mode="rus:2").engine == "density"  # its exact channel: the density path
        with pytest.raises(ValueError, match="numpy path in float64"):
            ExactEngine(cfg, engine="gpu", neuron_mode="amplify:3")
        with pytest.raises(ValueError, match="numpy path in float64"):
            ExactEngine(cfg, precision="float32", neuron_mode="amplify:3")
        assert ExactEngine(cfg, neuron_mode="amplify:3").engine == "numpy"


def _enumerated_measure(engine, params, inputs, measured: int):
    """Exact accepted-shot figures when the first ``measured`` steps' io outcomes are read and
    ignored: a sum over every outcome history of those steps (independent of the trajectories)."""
    import itertools

    outcomes = engine.config.num_outcomes
    steps = inputs.shape[0]
    joint = np.zeros(outcomes)
    for history in itertools.product(range(outcomes), repeat=measured):
        targets = np.array([*history] + [0] * (steps - measured))
        r = engine.simulate(params, inputs[None], targets[None])
        weight = np.prod(r.neuron_acceptance[0, :measured] * r.outcome_probability[0, :measured])
        joint += weight * r.neuron_acceptance[0, measured] * r.probabilities[0, measured]
    return joint.sum(), joint / joint.sum()


class TestUnscoredMeasure:
    CFG = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=2)
    PARAMS = np.random.default_rng(5).normal(0, 0.8, CFG.num_parameters)
    INPUTS = np.array([1, 0, 1])

    def test_weighted_trajectories_converge_to_the_enumeration(self):
        engine = ExactEngine(self.CFG, neuron_mode="amplify:3")
        acceptance, distribution = _enumerated_measure(engine, self.PARAMS, self.INPUTS, 2)
        n = 4000
        r = engine.simulate(self.PARAMS, np.tile(self.INPUTS, (n, 1)), np.zeros((n, 3), int),
                            sample=np.array([True, True, False]), seed=3)
        w = np.prod(r.neuron_acceptance, axis=1)
        estimate = (w[:, None] * r.probabilities[:, 2]).sum(axis=0) / w.sum()
        spread = r.probabilities[:, 2].std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(estimate - distribution) <= 5 * spread + 1e-12), (estimate - distribution) / spread
        assert w.mean() == pytest.approx(acceptance, abs=5 * w.std() / np.sqrt(n))
        assert spread.max() > 0 and 5 * spread.max() < 0.05  # tight enough to see a wrong meaning

    def test_aer_samples_agree_with_the_engine(self):
        from qrnn_qiskit.runners.aer import AerRunner

        engine = ExactEngine(self.CFG, neuron_mode="amplify:3")
        acceptance, distribution = _enumerated_measure(engine, self.PARAMS, self.INPUTS, 2)
        postselected = ExactEngine(self.CFG).simulate(self.PARAMS, self.INPUTS[None], self.INPUTS[None] * 0)
        shots = AerRunner(shots=3000, seed=11, neuron_mode="amplify:3").sample(self.CFG, self.PARAMS, self.INPUTS[None])
        ok = shots.neurons_ok.all(axis=2)[0]
        assert ok.mean() == pytest.approx(acceptance, abs=5 * np.sqrt(acceptance * (1 - acceptance) / ok.size))
        # amplification keeps most shots (15 neurons, each failing at most 2.8 % at L=3); postselection few
        assert acceptance > 0.75 > 0.2 > np.prod(postselected.neuron_acceptance)
        read = np.bincount(shots.tokens[0, ok, 2], minlength=2) / ok.sum()
        sigma = np.sqrt(distribution * (1 - distribution) / ok.sum())
        assert np.all(np.abs(read - distribution) <= 5 * sigma), (read - distribution) / sigma

    def test_evaluate_exact_measure_and_postselect(self, tmp_path):
        from qrnn_qiskit.data.registry import get_dataset
        from qrnn_qiskit.evaluation.exact import evaluate_exact

        dataset = get_dataset("dna", sentence_length=6)
        cfg = QRNNConfig(input_width=dataset.input_width, workspace=2, stages=1, order=1, degree=2)
        params = cfg.initial_parameters(seed=4)
        batch = dataset.split("test").first(3)
        post = evaluate_exact(cfg, params, dataset, batch=batch, neuron_mode="amplify:3")
        measured = evaluate_exact(cfg, params, dataset, batch=batch, neuron_mode="amplify:3", unscored="measure",
                                  trajectories=8)
        # postselecting four don't-care outcomes costs acceptance; measuring them costs none
        assert measured["log10_expected_acceptance"] > post["log10_expected_acceptance"] + 0.5
        assert measured["log10_expected_acceptance"] > np.log10(0.5)
        assert measured["unscored"] == "measure" and measured["trajectories"] == 8
        with pytest.raises(ValueError, match="unscored must be one of postselect, measure"):
            evaluate_exact(cfg, params, dataset, batch=batch, unscored="ignore")


class TestCommands:
    @pytest.mark.slow
    def test_qasm3_round_trip_of_an_amplified_sequence(self, tmp_path):
        from qrnn_qiskit.circuits.export import export_qasm, load_qasm

        cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=2)
        circuit = qrnn_sequence(cfg, 2, neuron_mode="amplify:3")
        loaded = load_qasm(export_qasm(circuit, tmp_path / "amp.qasm"))
        assert sorted(p.name for p in loaded.parameters) == sorted(p.name for p in circuit.parameters)
        assert loaded.metadata["qrnn"]["neuron_mode"] == "amplify:3"
        rng = np.random.default_rng(2)
        params = rng.normal(0, 1, cfg.num_parameters)
        values = {f"w[{k}]": v for k, v in enumerate(params)} | {"x[0]": 1.0, "x[1]": 0.0}
        bound = loaded.assign_parameters({p: values[p.name] for p in loaded.parameters})
        reference = run_postselected(bound, [1, 0], 1)
        engine = ExactEngine(cfg, neuron_mode="amplify:3").simulate(params, [[1, 0]], [[1, 0]])
        np.testing.assert_allclose(engine.probabilities[0], reference.probabilities, atol=1e-10, rtol=0)
        np.testing.assert_allclose(engine.neuron_acceptance[0], reference.neuron_acceptance, atol=1e-10, rtol=0)

    def test_build_reports_the_schedule_and_gates(self):
        import json

        from click.testing import CliRunner

        from qrnn_qiskit.cli import main

        args = ["build", "-I", "1", "-W", "2", "-S", "1", "-k", "2", "-d", "2", "--no-compare", "--json"]
        post = json.loads(CliRunner().invoke(main, args).stdout)
        result = CliRunner().invoke(main, [*args, "--neuron-mode", "amplify:3"])
        assert result.exit_code == 0, result.output
        amp = json.loads(result.stdout)
        info = amp["amplification"]
        assert info["parameter_blocks_per_neuron"] == 36 and info["attempts_per_neuron"] == 18
        assert info["failure_bound_per_level"] == pytest.approx(FixedPointSchedule(3).delta ** 2)
        assert info["failure_bound_per_level"] < info["neuron_failure_worst"] < 1.5 * info["failure_bound_per_level"]
        # each neuron: k = 2 measurements instead of 2**k - 1 = 3; 36 parameter blocks instead of 4
        neurons = 5
        assert amp["logical"]["measurements"] == neurons * 2 + 1
        assert post["logical"]["measurements"] == neurons * 3 + 1
        # one CRY(+-pi) per attempt: 2 L^2 = 18 inner attempts and L = 3 outer ones per neuron (by hand)
        assert amp["logical"]["operations"]["cry"] == neurons * (2 * 3**2 + 3)
        bad = CliRunner().invoke(main, [*args, "--neuron-mode", "amplify:2"])
        assert bad.exit_code != 0 and "odd number L >= 3" in bad.output


class TestBadInput:
    def test_training_settings_refuse_what_has_no_exact_meaning(self):
        from qrnn_qiskit.training.settings import TrainSettings

        assert TrainSettings(neuron_mode="rus:2").run.device_meaning  # the density path trains it
        with pytest.raises(ValueError, match="neuron_mode rus:2 trains a QRNN on the exact engine; got .*backend 'aer'"):
            TrainSettings(neuron_mode="rus:2", backend="aer").validate()
        with pytest.raises(ValueError, match="neuron_mode amplify:3 trains a QRNN on the exact engine; got model 'lstm'"):
            TrainSettings(model="lstm", neuron_mode="amplify:3").validate()
        with pytest.raises(ValueError, match="runs on the numpy path in float64.*engine 'gpu'"):
            TrainSettings(engine="gpu", neuron_mode="amplify:3").validate()
        with pytest.raises(ValueError, match="odd number L >= 3"):
            TrainSettings(neuron_mode="amplify:4").validate()
        settings = TrainSettings(neuron_mode="amplify")
        settings.validate()
        assert settings.run.neuron_mode == "amplify:5"  # normalised to its spelling

    def test_init_from_another_model_names_the_difference(self, tmp_path):
        from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint
        from qrnn_qiskit.training.settings import TrainSettings
        from qrnn_qiskit.workflows.train import train

        other = QRNNConfig(input_width=3, workspace=2, stages=1, order=2, degree=2)
        path = save_checkpoint(tmp_path / "other.npz", Checkpoint(other, other.initial_parameters(seed=1), {}))
        settings = TrainSettings(dataset="simple-seq", workspace=3, stages=1, steps=1, init=str(path))
        with pytest.raises(ValueError, match=r"holds another model \(workspace: 2 there, 3 here\)"):
            train(settings, tmp_path / "run")
        assert not (tmp_path / "run").exists()  # refused before a run folder is made

    def test_trajectories_must_be_positive(self):
        from qrnn_qiskit.data.registry import get_dataset
        from qrnn_qiskit.evaluation.exact import evaluate_exact

        dataset = get_dataset("dna", sentence_length=6)
        cfg = QRNNConfig(input_width=3, workspace=1, stages=0, order=1, degree=1)
        batch = dataset.split("test").first(1)
        for bad in (0, -2, 1.5, True):
            with pytest.raises(ValueError, match="trajectories must be a positive integer"):
                evaluate_exact(cfg, cfg.initial_parameters(seed=1), dataset, batch=batch, unscored="measure",
                               trajectories=bad)
