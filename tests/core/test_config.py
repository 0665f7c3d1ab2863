"""Model configuration: counts, parameter layout, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig, Stage, num_parameters


class TestCounts:
    @pytest.mark.parametrize(
        ("input_width", "workspace", "stages", "degree", "expected"),
        [
            (3, 5, 2, 3, 1162),  # simple-seq
            (3, 5, 1, 3, 837),  # dna
            (2, 8, 2, 2, 1212),  # mnist01, mnist36
            (2, 6, 2, 3, 1292),  # mnist36 L-BFGS
            (3, 7, 2, 3, 3134),  # UMAP d=3
            (2, 8, 2, 3, 3396),  # t-SNE
            (2, 4, 1, 3, 264),  # elman-xor init grid
            (3, 6, 2, 2, 789),  # elman-letter best
            (2, 10, 2, 2, 2164),  # mnist01-gen
        ],
    )
    def test_paper_examples(self, input_width, workspace, stages, degree, expected):
        cfg = QRNNConfig(input_width=input_width, workspace=workspace, stages=stages, degree=degree)
        assert cfg.num_parameters == expected
        assert num_parameters(input_width, workspace, stages, degree) == expected

    @pytest.mark.parametrize(
        "input_width,workspace,stages,degree",
        [c for c in itertools.product([1, 2, 3], [1, 3, 5], [0, 1, 3], [1, 2]) if c[3] <= c[0] + c[1] - 1],
    )
    def test_formula(self, input_width, workspace, stages, degree):
        cfg = QRNNConfig(input_width=input_width, workspace=workspace, stages=stages, degree=degree)
        # P = (W + S*W + I)(1 + D) + S*W,  D = sum_{j=1..d} C(W+I-1, j)
        d = sum(math.comb(workspace + input_width - 1, j) for j in range(1, degree + 1))
        assert cfg.num_parameters == (workspace + stages * workspace + input_width) * (1 + d) + stages * workspace
        assert cfg.num_qubits == input_width + workspace + cfg.order
        assert len(cfg.neurons) == cfg.num_neurons == workspace * (1 + stages) + input_width


class TestLayout:
    def test_neuron_order_and_offsets(self):
        cfg = QRNNConfig(input_width=2, workspace=3, stages=2, degree=2)
        stages = [str(spec.stage) for spec in cfg.neurons]
        assert stages == ["input"] * 3 + ["work0"] * 3 + ["work1"] * 3 + ["output"] * 2
        assert [spec.stage.index for spec in cfg.neurons] == [None] * 3 + [0] * 3 + [1] * 3 + [None] * 2
        assert cfg.neurons[4].stage == Stage("work", 0) and cfg.neurons[4].stage.is_work
        assert [spec.target for spec in cfg.neurons] == [2, 3, 4] * 3 + [0, 1]
        per = 1 + cfg.num_neuron_weights
        assert [spec.offset for spec in cfg.neurons] == [per * i for i in range(11)]
        assert cfg.unitary_offset == 11 * per
        assert cfg.unitary_index(1, 3) == 11 * per + 3 + 1

    def test_sources_are_workspace_then_io(self):
        cfg = QRNNConfig(input_width=2, workspace=3, stages=1, degree=2)
        assert cfg.neuron_sources(3) == (2, 4, 0, 1)
        assert cfg.neuron_sources(0) == (2, 3, 4, 1)
        spec = cfg.neurons[1]  # input-stage neuron on lane 3
        assert spec.subsets[:4] == ((2,), (4,), (0,), (1,))
        assert spec.subsets[4:7] == ((2, 4), (2, 0), (2, 1))
        assert spec.bias_index == spec.offset + 10

    def test_initial_parameters(self):
        cfg = QRNNConfig(input_width=2, workspace=3, stages=1, degree=2)
        zeros = cfg.initial_parameters(bias_spread=0, weights_spread=0, unitaries_spread=0, seed=1)
        assert not zeros.any()
        values = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.0, unitaries_spread=0.0, seed=1)
        biases = values[[spec.bias_index for spec in cfg.neurons]]
        assert np.all(biases != 0)
        assert np.count_nonzero(values) == cfg.num_neurons
        np.testing.assert_array_equal(values, cfg.initial_parameters(bias_spread=0.5, weights_spread=0.0, unitaries_spread=0.0, seed=1))

    def test_token_bits_msb_first(self):
        cfg = QRNNConfig(input_width=3, workspace=1, stages=0, degree=1)
        np.testing.assert_array_equal(cfg.token_to_bits([1, 4, 6]), [[0, 0, 1], [1, 0, 0], [1, 1, 0]])

    def test_round_trip_dict(self):
        cfg = QRNNConfig(input_width=2, workspace=3, stages=1, order=3, degree=2, bias=1.570796)
        assert QRNNConfig.from_dict(cfg.to_dict()) == cfg


class TestInputs:
    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"input_width": 0, "workspace": 2}, ValueError, r"input_width must be >= 1, got 0"),
            ({"input_width": 1, "workspace": -1}, ValueError, r"workspace must be >= 1, got -1"),
            ({"input_width": 1, "workspace": 2, "stages": -1}, ValueError, r"stages must be >= 0"),
            ({"input_width": 1, "workspace": 2, "order": 0}, ValueError, r"order must be >= 1"),
            ({"input_width": 1, "workspace": 2, "degree": 3}, ValueError, r"degree must be at most .* \(input_width \+ workspace - 1 = 2\), got degree=3"),
            ({"input_width": 1, "workspace": 2.5}, TypeError, r"workspace must be an integer"),
            ({"input_width": True, "workspace": 2}, TypeError, r"input_width must be an integer"),
            ({"input_width": 1, "workspace": 2, "bias": float("nan")}, ValueError, r"bias must be finite"),
            ({"input_width": 20, "workspace": 10}, ValueError, r"at most 24"),
        ],
    )
    def test_bad_config(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            QRNNConfig(**kwargs)

    def test_wrong_parameter_length(self):
        cfg = QRNNConfig(input_width=1, workspace=2, stages=1, degree=1)
        with pytest.raises(ValueError, match=rf"length {cfg.num_parameters} .* got shape \(3,\)"):
            cfg.validate_parameters([0.0, 1.0, 2.0])
        with pytest.raises(ValueError, match="NaN or infinite"):
            cfg.validate_parameters([np.nan] * cfg.num_parameters)

    @pytest.mark.parametrize(
        ("tokens", "match"),
        [([0, 4], r"must lie in \[0, 4\) for input_width=2, got values in \[0, 4\]"), ([0.5], "whole numbers"), (["a"], "must be integers"), ([True], "must be integers")],
    )
    def test_bad_tokens(self, tokens, match):
        cfg = QRNNConfig(input_width=2, workspace=2, stages=1, degree=1)
        with pytest.raises(ValueError, match=match):
            cfg.validate_tokens(tokens)

    def test_from_dict_rejects_unknown_keys(self):
        with pytest.raises(ValueError, match=r"Unknown model configuration keys \['width'\]"):
            QRNNConfig.from_dict({"input_width": 1, "workspace": 2, "width": 3})
        with pytest.raises(ValueError, match=r"missing required keys \['workspace'\]"):
            QRNNConfig.from_dict({"input_width": 1})
