"""NeuronMode: parsed once, spelled back, its flags; bad spellings and objects."""

from __future__ import annotations

import pytest

from qrnn_qiskit.core.modes import NeuronMode, rus_flags_per_neuron


@pytest.mark.parametrize(
    ("mode", "expected"), [("postselect", ("postselect", 0)), ("rus", ("rus", 1)), ("rus:3", ("rus", 3))]
)
def test_parse_mode(mode, expected):
    parsed = NeuronMode.parse(mode)
    assert (parsed.kind, parsed.retries) == expected
    assert NeuronMode.parse(str(parsed)) == parsed and NeuronMode.parse(parsed) is parsed
    assert str(parsed) == ("rus:1" if mode == "rus" else mode)
    # the mode knows its flags: 2**k - 1 in postselect mode, the rus chains otherwise
    expected_flags = 3 if parsed.kind == "postselect" else rus_flags_per_neuron(2, parsed.retries)
    assert parsed.flags_per_neuron(2) == expected_flags == parsed.acceptance_mask(2).size


@pytest.mark.parametrize("mode", ["rus:0", "postselect:2", "fixed-point", "rus:-1", "", None, 3])
def test_bad_modes(mode):
    with pytest.raises(ValueError, match="neuron mode|at least one retry"):
        NeuronMode.parse(mode)


def test_bad_mode_objects():
    with pytest.raises(ValueError, match="postselect mode has no retries, got 2; use 'rus:2'"):
        NeuronMode("postselect", 2)
    with pytest.raises(ValueError, match="Unknown neuron mode kind 'fixed-point'"):
        NeuronMode("fixed-point", 3)
    with pytest.raises(ValueError, match="amplify mode has no retries, got 3"):
        NeuronMode("amplify", 3, 5)
    with pytest.raises(ValueError, match="postselect mode has no amplification uses, got 5; use 'amplify:5'"):
        NeuronMode("postselect", uses=5)
    with pytest.raises(TypeError, match="retries must be an integer, got float 1.5"):
        NeuronMode("rus", 1.5)
