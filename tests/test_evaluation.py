"""qrnn_qiskit.evaluate: the Python API and `qrnn eval` are one thing, on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit import evaluate
from qrnn_qiskit.cli import main
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.training import get_dataset, load_checkpoint


@pytest.mark.parametrize("backend", ["exact", "aer", "fake_manila"])
def test_api_and_command_line_give_the_same_figures(small_checkpoint, backend, tmp_path):
    options = {"backend": backend, "limit": 2, "shots": 3000, "seed": 3}
    ours = evaluate(small_checkpoint, **options)
    args = ["eval", str(small_checkpoint), "--backend", backend, "--limit", "2", "--shots", "3000", "--seed", "3", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    theirs = json.loads(result.output.strip().splitlines()[-1])
    if backend.startswith("fake_"):  # each submission gets its own job id
        assert len(ours.pop("job_ids")) == len(theirs.pop("job_ids")) == 1
    assert json.loads(json.dumps(ours)) == theirs
    # and the figures mean what they say: the exact engine's expected accuracy of those sequences
    ck = load_checkpoint(small_checkpoint)
    dataset = get_dataset("simple-bits", sentence_length=3)
    inputs, targets = dataset.split("test").first(2).engine_arrays()
    exact = ExactEngine(ck.config).simulate(ck.parameters, inputs, targets)
    expected = np.prod(exact.outcome_probability[:, dataset.scored()], axis=1).mean()
    assert ours["expected_accuracy"] == pytest.approx(expected, abs=1e-12)
    if backend == "exact":
        assert ours["word_accuracy"] == 1 - ours["character_error_rate"]
    if backend == "aer":  # ideal shots: the acceptance is a binomial frequency of the engine's figure
        total = ours["sequences"] * ours["shots"]
        p = ours["expected_acceptance"]
        assert p > 0.01 and abs(ours["acceptance"] - p) <= 5 * np.sqrt(p * (1 - p) / total)


def test_library_errors_speak_of_parameters(small_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="Unknown backend 'ionq_aria'; expected exact, aer"):
        evaluate(small_checkpoint, backend="ionq_aria")
    with pytest.raises(ValueError, match="Give jobs \\(a run folder\\) or job_ids, not both"):
        evaluate(small_checkpoint, jobs=tmp_path, job_ids=("a",))
    with pytest.raises(ValueError, match="job_ids collects IBM Quantum jobs"):
        evaluate(small_checkpoint, job_ids=("a",))
    with pytest.raises(ValueError, match="does not name its dataset; pass dataset"):
        from qrnn_qiskit.training import Checkpoint, save_checkpoint

        ck = load_checkpoint(small_checkpoint)
        evaluate(save_checkpoint(tmp_path / "anonymous.npz", Checkpoint(ck.config, ck.parameters)))
    # the command line names the flags instead
    r = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--job-id", "a"])
    assert r.exit_code == 2 and "--job-id collects IBM Quantum jobs" in r.output


def test_live_submission_needs_yes_and_says_what_it_costs(small_checkpoint, monkeypatch):
    """The cost gate is a parameter: without yes=True nothing is submitted and the error holds the cost."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qrnn_qiskit.runners import ibm

    monkeypatch.setattr(ibm, "connect", lambda token, instance: (None, "token"))
    monkeypatch.setattr(ibm, "resolve_backend", lambda name, service: FakeManilaV2())
    monkeypatch.setattr(ibm, "_is_fake", lambda backend: False)  # treated as a live device
    submitted = []
    monkeypatch.setattr(ibm.IBMRunner, "submit", lambda *a, **k: submitted.append(a))
    with pytest.raises(ibm.SubmissionNotConfirmed, match=r"(?s)cost on ibm_manila: 2 circuit\(s\) in 1 job\(s\) x 100 "
                       r"shots, about .* QPU seconds.*Nothing was submitted to ibm_manila.*pass yes"):
        evaluate(small_checkpoint, backend="ibm_manila", limit=2, shots=100)
    assert not submitted
