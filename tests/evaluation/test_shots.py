"""Runner-neutral shot handling, on hand-written bits."""

from __future__ import annotations

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.shots import ShotResult, evaluate_shots
from qrnn_qiskit.runners.shots import shots_from_bits


def test_bits_to_tokens_and_acceptance_by_hand():
    # I=2, W=1, S=0, order 1: 2 io + 1 ws... neurons per step = W + I = 3, one flag each (postselect)
    cfg = QRNNConfig(input_width=2, workspace=1, stages=0, order=1, degree=1)
    # one sequence, two shots, two steps; out bits little-endian: out[t*I + i] is io lane i at step t
    out = np.array([[[1, 0, 0, 1],     # step 0: lane0=1 lane1=0 -> token 0b10 = 2; step 1: 0b01 = 1
                     [1, 1, 0, 0]]], bool)  # step 0: token 3; step 1: token 0
    flags = np.zeros((1, 2, 2 * 3), bool)
    flags[0, 1, 4] = True  # shot 1: one neuron of step 1 failed
    shots = shots_from_bits(cfg, out, flags, 2, "postselect")
    np.testing.assert_array_equal(shots.tokens, [[[2, 1], [3, 0]]])
    np.testing.assert_array_equal(shots.neurons_ok, [[[True, True], [True, False]]])
    np.testing.assert_array_equal(shots.accepted(), [[True, False]])
    # postselecting step 0 on target 2 keeps only shot 0 (shot 1 read 3 there)
    np.testing.assert_array_equal(shots.accepted(np.array([[2, 0]]), postselect=[True, False]), [[True, False]])


def test_rus_flags_only_count_the_deciding_bits():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    # rus:2, order 1: three bits per neuron (first attempt, retry 1, retry 2); only the last decides
    flags = np.zeros((1, 1, 2 * 3), bool)
    flags[0, 0, [0, 1, 3, 4]] = True  # both neurons failed twice, then succeeded
    shots = shots_from_bits(cfg, np.zeros((1, 1, 1), bool), flags, 1, "rus:2")
    assert shots.neurons_ok.all()
    flags[0, 0, 5] = True
    assert not shots_from_bits(cfg, np.zeros((1, 1, 1), bool), flags, 1, "rus:2").neurons_ok.any()


def test_joint_probabilities_by_hand():
    tokens = np.array([[[0, 1], [0, 0], [1, 1], [0, 1]]])  # one sequence, 4 shots, 2 steps
    ok = np.array([[[True, True], [True, True], [True, True], [False, True]]])
    joint = ShotResult(tokens, ok).joint_probabilities(np.array([[0, 1]]), 2)
    # step 0: shots 0-2 accepted, reading 0, 0, 1
    np.testing.assert_allclose(joint[0, 0], [2 / 4, 1 / 4])
    # step 1: shots 0 and 1 read the target 0 at step 0 and read 1 and 0
    np.testing.assert_allclose(joint[0, 1], [1 / 4, 1 / 4])


def test_evaluate_shots_refuses_another_number_of_sequences():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    dataset = get_dataset("simple-bits", sentence_length=3)
    shots = ShotResult(np.zeros((1, 5, 2), int), np.ones((1, 5, 2), bool))
    with pytest.raises(ValueError, match="The shots hold 1 sequences but 2 are being evaluated"):
        evaluate_shots(cfg, cfg.initial_parameters(seed=0), dataset, shots, limit=2)
