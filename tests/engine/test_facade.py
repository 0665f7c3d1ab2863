"""Exact engine: equivalence with the gate-level circuit, hand-derived values, gradients, inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statevector_reference import run_postselected

from qrnn_qiskit.circuits import qrnn_sequence
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine import ExactEngine, reference_loss_offset
from qrnn_qiskit.engine.shift import joint_probabilities, parameter_shift_gradient, shift_rule


def _random_case(seed: int):
    """I 1-3, W 1-4, S 1-2, k 1-3, d 1-3, T 1-4, random weights and inputs (superposed workspace)."""
    rng = np.random.default_rng(seed)
    input_width = int(rng.integers(1, 4))
    workspace = int(rng.integers(1, 5))
    degree = int(rng.integers(1, min(3, input_width + workspace - 1) + 1))
    cfg = QRNNConfig(
        input_width=input_width,
        workspace=workspace,
        stages=int(rng.integers(1, 3)),
        order=int(rng.integers(1, 4)),
        degree=degree,
    )
    length = int(rng.integers(1, 5))
    # keep the gate-by-gate reference affordable: few gates for the deep, wide cases
    while length > 1 and length * cfg.num_neurons * 2**cfg.order * cfg.num_neuron_weights > 12000:
        length -= 1
    params = rng.normal(0.0, 1.0, cfg.num_parameters)
    inputs = rng.integers(0, cfg.num_outcomes, length)
    targets = rng.integers(0, cfg.num_outcomes, length)
    return cfg, params, inputs, targets


class TestEquivalenceWithCircuit:
    @pytest.mark.parametrize("engine", ["cpu", "numpy"])
    @pytest.mark.parametrize("seed", range(16))
    def test_random_configurations(self, seed, engine):
        cfg, params, inputs, targets = _random_case(seed)
        bits = cfg.token_to_bits(inputs).reshape(-1).astype(float)
        circuit = qrnn_sequence(cfg, len(inputs), weights=params, inputs=bits)
        reference = run_postselected(circuit, [int(t) for t in targets], cfg.input_width)
        result = ExactEngine(cfg, engine=engine).simulate(params, inputs[None], targets[None])
        np.testing.assert_allclose(result.probabilities[0], reference.probabilities, atol=1e-10, rtol=0)
        np.testing.assert_allclose(result.outcome_probability[0], reference.outcome_probability, atol=1e-10, rtol=0)
        np.testing.assert_allclose(result.neuron_acceptance[0], reference.neuron_acceptance, atol=1e-10, rtol=0)

    def test_batch_equals_single_runs(self):
        cfg = QRNNConfig(input_width=2, workspace=3, stages=1, order=2, degree=2)
        rng = np.random.default_rng(11)
        params = rng.normal(0, 1, cfg.num_parameters)
        inputs = rng.integers(0, 4, (5, 4))
        targets = rng.integers(0, 4, (5, 4))
        engine = ExactEngine(cfg)
        batch = engine.simulate(params, inputs, targets)
        for b in range(5):
            one = engine.simulate(params, inputs[b : b + 1], targets[b : b + 1])
            np.testing.assert_allclose(batch.probabilities[b], one.probabilities[0], atol=1e-14)


class TestHandDerived:
    def test_zero_weights_single_step(self):
        # I=1, W=1, S=0, k=1, zero weights: every angle is pi/2, eta = pi/4, c^2 = s^2 = 1/2.
        # Input neuron: ws |0> -> (1/2, 1/2), accepted with 1/2; output neuron: io |0> ->
        # (1/2, 1/2), accepted with 1/2. So p = (1/2, 1/2) and the step's acceptance is 1/4.
        cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
        engine = ExactEngine(cfg)
        result = engine.simulate(np.zeros(cfg.num_parameters), [[1]], [[1]])
        np.testing.assert_allclose(result.probabilities[0, 0], [0.5, 0.5], atol=1e-15)
        assert result.neuron_acceptance[0, 0] == pytest.approx(0.25, abs=1e-15)
        # loss = logsumexp(1/2, 1/2) - 1/2 - (-1 + ln(1 + e)) = 1 + ln(2 / (1 + e))
        loss = engine.loss(np.zeros(cfg.num_parameters), [[1]], [[1]], [True])
        assert loss == pytest.approx(1 + math.log(2 / (1 + math.e)), abs=1e-14)

    def test_loss_offset_bounds(self):
        # With p_y = 1 the reference loss is exactly 0; the offset is -1 + ln(2^I - 1 + e).
        for width in (1, 2, 3):
            p = np.zeros(2**width)
            p[0] = 1
            lse = math.log(np.exp(p).sum())
            assert lse - 1 - reference_loss_offset(width) == pytest.approx(0, abs=1e-15)

    def test_saturated_neuron_copies_its_input(self):
        # I=1, W=1, order 3: a large weight on the io source drives the input neuron's angle to
        # pi (output 1) when the input bit is 1 and to 0 when it is 0.
        cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=3, degree=1)
        # layout: input neuron [phi_io, theta], output neuron [phi_ws, theta]; angle = pi/2 +
        # theta + phi x, so phi = pi and theta = -pi/2 give angle = pi * x (a NOT when x = 1).
        params = np.array([math.pi, -math.pi / 2, math.pi, -math.pi / 2])
        result = ExactEngine(cfg).simulate(params, [[0, 1]], [[0, 1]])
        np.testing.assert_allclose(result.probabilities[0], [[1, 0], [0, 1]], atol=1e-12)


class TestGradients:
    @pytest.mark.parametrize(
        ("input_width", "workspace", "stages", "order", "degree"),
        [(1, 2, 1, 1, 1), (2, 3, 2, 2, 2), (3, 2, 1, 3, 2)],
    )
    def test_central_finite_differences(self, input_width, workspace, stages, order, degree):
        cfg = QRNNConfig(input_width=input_width, workspace=workspace, stages=stages, order=order, degree=degree)
        engine = ExactEngine(cfg)
        rng = np.random.default_rng(workspace * 10 + order)
        params = rng.normal(0, 0.7, cfg.num_parameters)
        inputs = rng.integers(0, cfg.num_outcomes, (3, 4))
        targets = rng.integers(0, cfg.num_outcomes, (3, 4))
        scored = np.array([True, False, True, True])
        _, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
        h = 1e-5
        fd = np.empty_like(params)
        for i in range(cfg.num_parameters):
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (engine.loss(up, inputs, targets, scored) - engine.loss(down, inputs, targets, scored)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)

    def test_exact_parameter_shift(self):
        cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
        engine = ExactEngine(cfg)
        rng = np.random.default_rng(3)
        params = rng.normal(0, 0.8, cfg.num_parameters)
        inputs = rng.integers(0, 4, (2, 3))
        targets = rng.integers(0, 4, (2, 3))
        scored = np.array([True, False, True])
        _, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
        # a subset weight, a pair weight, a bias, a work-stage angle and an output-neuron weight
        indices = [0, 3, cfg.neurons[2].bias_index, cfg.unitary_offset, cfg.neurons[-1].offset + 1]
        shifted = parameter_shift_gradient(engine, params, inputs, targets, scored, indices=indices)
        np.testing.assert_allclose(shifted[indices], grad[indices], rtol=1e-9, atol=1e-12)

    def test_shift_rule_two_term(self):
        shifts, coeffs = shift_rule(1)
        np.testing.assert_allclose(shifts, [math.pi / 2, 3 * math.pi / 2])
        np.testing.assert_allclose(coeffs, [0.5, -0.5])

    def test_joint_probabilities_are_unnormalised_circuit_probabilities(self):
        cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
        rng = np.random.default_rng(2)
        params = rng.normal(0, 1, cfg.num_parameters)
        result = ExactEngine(cfg).simulate(params, [[1, 0]], [[0, 1]])
        joint = joint_probabilities(result)
        # step 0: acceptance * p; step 1 also carries step 0's acceptance and target probability
        np.testing.assert_allclose(joint[0, 0], result.neuron_acceptance[0, 0] * result.probabilities[0, 0])
        np.testing.assert_allclose(
            joint[0, 1],
            result.neuron_acceptance[0, 0] * result.probabilities[0, 0, 0] * result.neuron_acceptance[0, 1] * result.probabilities[0, 1],
        )


class TestSampling:
    def test_sampled_outcomes_follow_the_distribution(self):
        cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=1)
        engine = ExactEngine(cfg)
        params = np.random.default_rng(4).normal(0, 0.8, cfg.num_parameters)
        inputs = np.ones((4000, 1), dtype=int)
        result = engine.simulate(params, inputs, seed=7)
        p1 = result.probabilities[0, 0, 1]
        assert result.outcomes.mean() == pytest.approx(p1, abs=4 * math.sqrt(p1 * (1 - p1) / 4000))
        again = engine.simulate(params, inputs, seed=7)
        np.testing.assert_array_equal(result.outcomes, again.outcomes)

    def test_sample_mask_mixes_postselection_and_sampling(self):
        cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=1, degree=1)
        engine = ExactEngine(cfg)
        params = np.random.default_rng(1).normal(0, 1, cfg.num_parameters)
        targets = np.array([[3, 2, 1]] * 50)
        result = engine.simulate(params, np.zeros((50, 3), int), targets, sample=[False, True, False], seed=0)
        assert np.all(result.outcomes[:, 0] == 3) and np.all(result.outcomes[:, 2] == 1)
        assert len(set(result.outcomes[:, 1].tolist())) > 1

    def test_per_sequence_sample_mask(self):
        cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=1, degree=1)
        engine = ExactEngine(cfg)
        params = np.random.default_rng(1).normal(0, 1, cfg.num_parameters)
        targets = np.array([[3, 2]] * 40)
        mask = np.zeros((40, 2), bool)
        mask[20:, 1] = True
        result = engine.simulate(params, np.zeros((40, 2), int), targets, sample=mask, seed=0)
        assert np.all(result.outcomes[:20] == [3, 2])
        assert len(set(result.outcomes[20:, 1].tolist())) > 1


class TestInputs:
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, degree=1)

    def test_wrong_parameter_length(self):
        with pytest.raises(ValueError, match=rf"length {self.cfg.num_parameters}"):
            ExactEngine(self.cfg).simulate(np.zeros(3), [[0]], [[0]])

    def test_tokens_out_of_range(self):
        params = np.zeros(self.cfg.num_parameters)
        with pytest.raises(ValueError, match=r"inputs must lie in \[0, 4\) for input_width=2, got values in \[0, 7\]"):
            ExactEngine(self.cfg).simulate(params, [[0, 7]], [[0, 0]])

    def test_inputs_shape(self):
        params = np.zeros(self.cfg.num_parameters)
        with pytest.raises(ValueError, match=r"inputs must have shape \(batch, steps\)"):
            ExactEngine(self.cfg).simulate(params, [0, 1], [0, 1])
        with pytest.raises(ValueError, match=r"targets must have the same shape as inputs \(1, 2\), got \(1, 3\)"):
            ExactEngine(self.cfg).simulate(params, [[0, 1]], [[0, 1, 2]])

    def test_masks(self):
        engine = ExactEngine(self.cfg)
        params = np.zeros(self.cfg.num_parameters)
        with pytest.raises(ValueError, match=r"scored must have shape \(2,\), one flag per step, got \(3,\)"):
            engine.loss(params, [[0, 1]], [[0, 1]], [True, True, False])
        with pytest.raises(ValueError, match="scored must mark at least one step"):
            engine.loss(params, [[0, 1]], [[0, 1]], [False, False])
        with pytest.raises(ValueError, match="sample must be a boolean mask"):
            engine.simulate(params, [[0, 1]], [[0, 1]], sample=[0, 1])

    @pytest.mark.parametrize("engine", ["cpu", "numpy"])
    def test_impossible_postselection(self, engine):
        # A saturated output neuron (angle exactly 0) can never read 1: say so, do not divide by 0.
        cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
        params = np.zeros(cfg.num_parameters)
        params[3] = -math.pi / 2  # output bias: angle 0 -> output 0 with certainty
        with pytest.raises(QRNNError, match=r"Postselecting step 0 of sequence 0 on outcome 1 is impossible"):
            ExactEngine(cfg, engine=engine).simulate(params, [[0]], [[1]])
