"""qrnn_qiskit.evaluate: the Python API and `qrnn eval` are one thing, on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qrnn_qiskit import evaluate
from qrnn_qiskit.cli import main
from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.models.checkpoint import load_checkpoint


@pytest.mark.slow
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
        from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint

        ck = load_checkpoint(small_checkpoint)
        evaluate(save_checkpoint(tmp_path / "anonymous.npz", Checkpoint(ck.config, ck.parameters)))
    # the command line names the flags instead
    r = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--job-id", "a"])
    assert r.exit_code == 2 and "--job-id collects IBM Quantum jobs" in r.output


def test_live_submission_needs_yes_and_says_what_it_costs(small_checkpoint, monkeypatch):
    """The cost gate is a parameter: without yes=True nothing is submitted and the error holds the cost."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qrnn_qiskit.runners.ibm import runner
    from qrnn_qiskit.workflows import hardware

    monkeypatch.setattr(hardware, "connect", lambda token, instance: (None, "token"))
    monkeypatch.setattr(hardware, "resolve_backend", lambda name, service: FakeManilaV2())
    monkeypatch.setattr(runner, "is_fake", lambda backend: False)  # treated as a live device
    submitted = []
    monkeypatch.setattr(runner.IBMRunner, "submit", lambda *a, **k: submitted.append(a))
    with pytest.raises(hardware.SubmissionNotConfirmed, match=r"(?s)cost on ibm_manila: 2 circuit\(s\) in 1 job\(s\) x 100 "
                       r"shots, about .* QPU seconds.*Nothing was submitted to ibm_manila.*pass yes"):
        evaluate(small_checkpoint, backend="ibm_manila", limit=2, shots=100)
    assert not submitted


def _member(tmp_path, name, seed, dataset="simple-bits", input_width=1):
    from qrnn_qiskit.core.config import QRNNConfig
    from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint

    config = QRNNConfig(input_width=input_width, workspace=2, stages=1, order=1, degree=1)
    params = config.initial_parameters(bias_spread=1.0, weights_spread=1.0, unitaries_spread=1.0, seed=seed)
    meta = {"dataset": dataset, "settings": {"dataset": dataset, "sentence_length": 3}}
    return save_checkpoint(tmp_path / name, Checkpoint(config, params, meta))


def test_ensemble_averages_the_members_distributions_by_hand(tmp_path):
    paths = [_member(tmp_path, f"m{k}.npz", seed) for k, seed in enumerate((1, 2, 3))]
    result = evaluate(paths[0], ensemble=paths[1:])
    # by hand: each member's teacher-forced distributions from the engine, averaged with weights 1/3
    dataset = get_dataset("simple-bits", sentence_length=3)
    inputs, targets = dataset.split("test").engine_arrays()
    scored = dataset.scored()
    assert scored.sum() == 2  # two words: the second is decided after the first's decision, not its target
    members = [load_checkpoint(path) for path in paths]

    def mean(forced):
        return sum(ExactEngine(ck.config).simulate(ck.parameters, inputs, forced).probabilities for ck in members) / 3

    first, second = np.flatnonzero(scored)
    teacher = mean(targets)
    want = targets[:, scored]
    p_right = np.take_along_axis(teacher[:, scored], want[..., None], axis=2)[..., 0]
    forced = targets.copy()
    forced[:, first] = teacher[:, first].argmax(axis=1)
    decided = np.stack([forced[:, first], mean(forced)[:, second].argmax(axis=1)], axis=1)
    assert result["members"] == 3 and result["sequences"] == inputs.shape[0] == 2
    assert result["expected_accuracy"] == pytest.approx(np.prod(p_right, axis=1).mean(), abs=1e-12)
    assert result["accuracy"] == ((decided == want).all(axis=1)).mean()
    assert result["word_accuracy"] == (decided == want).mean()
    # each member's own figures stand beside, and they are its single-model evaluation
    for path, figures in zip(paths, result["member_figures"]):
        single = evaluate(path)
        assert figures["checkpoint"] == str(path) and figures["expected_accuracy"] == single["expected_accuracy"]
    # an ensemble is not its best member: the averaged probability differs from every member's
    assert all(abs(result["expected_accuracy"] - f["expected_accuracy"]) > 1e-6 for f in result["member_figures"])
    # the command line is the same call
    r = CliRunner().invoke(main, ["eval", str(paths[0]), "--ensemble", str(paths[1]), "--ensemble", str(paths[2]), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["expected_accuracy"] == result["expected_accuracy"]


def test_an_ensembles_later_word_never_sees_an_earlier_words_target(tmp_path):
    """Members chosen so that the second word's decision changes with what the first step is
    postselected on: after the ensemble's (wrong) first decisions it is 1, 1; postselected on the
    first words' targets it would be 0, 1, which would score one more word right."""
    paths = [_member(tmp_path, f"m{seed}.npz", seed) for seed in (3, 1003, 2003)]
    members = [load_checkpoint(path) for path in paths]
    inputs, targets = get_dataset("simple-bits", sentence_length=3).split("test").engine_arrays()

    def mean(forced):
        return sum(ExactEngine(ck.config).simulate(ck.parameters, inputs, forced).probabilities for ck in members) / 3

    first = mean(targets)[:, 0].argmax(axis=1)
    forced = targets.copy()
    forced[:, 0] = first
    np.testing.assert_array_equal(targets, [[1, 0], [1, 1]])
    np.testing.assert_array_equal(first, [0, 0])  # both first words decided wrong
    np.testing.assert_array_equal(mean(forced)[:, 1].argmax(axis=1), [1, 1])  # decided after the decisions
    np.testing.assert_array_equal(mean(targets)[:, 1].argmax(axis=1), [0, 1])  # what the targets would leak
    result = evaluate(paths[0], ensemble=paths[1:])
    assert result["word_accuracy"] == 1 / 4  # (not 2 / 4)
    assert result["accuracy"] == 0.0


def test_one_model_decided_step_by_step_by_hand(tmp_path):
    """evaluate_decided of one model: its first word decided on the targets, its second after that
    decision, as an ensemble decides; no model is refused."""
    from qrnn_qiskit.evaluation.decided import evaluate_decided

    ck = load_checkpoint(_member(tmp_path, "m.npz", 3))
    dataset = get_dataset("simple-bits", sentence_length=3)
    inputs, targets = dataset.split("test").engine_arrays()
    engine = ExactEngine(ck.config)
    forced = targets.copy()
    forced[:, 0] = engine.simulate(ck.parameters, inputs, targets).probabilities[:, 0].argmax(axis=1)
    decided = np.stack([forced[:, 0], engine.simulate(ck.parameters, inputs, forced).probabilities[:, 1].argmax(axis=1)], 1)
    result = evaluate_decided([(ck.config, ck.parameters)], dataset)
    assert result["word_accuracy"] == (decided == targets).mean()
    assert result["accuracy"] == (decided == targets).all(axis=1).mean()
    with pytest.raises(ValueError, match="evaluate_decided needs at least one model, got none"):
        evaluate_decided([], dataset)


def test_ensemble_members_must_match(tmp_path):
    first = _member(tmp_path, "a.npz", 1)
    with pytest.raises(ValueError, match=r"must share the dataset: .*a.npz was trained on simple-bits, .*b.npz on dna"):
        evaluate(first, ensemble=[_member(tmp_path, "b.npz", 2, dataset="dna")])
    with pytest.raises(ValueError, match=r"member 1 has input_width=2 but the dataset simple-bits has 1-bit tokens"):
        evaluate(first, ensemble=[_member(tmp_path, "c.npz", 2, input_width=2)])
    with pytest.raises(ValueError, match="An ensemble is evaluated on the exact engine, not backend aer"):
        evaluate(first, backend="aer", ensemble=[_member(tmp_path, "d.npz", 2)])


def test_a_fake_run_is_collected_offline_from_its_folder(small_checkpoint, tmp_path, monkeypatch):
    """A fake backend runs in the process that submits it; `eval --jobs DIR` returns the figures it
    wrote, with no credentials and no new shots, and says what to do when it never finished."""
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    out = tmp_path / "fake"
    ran = evaluate(small_checkpoint, backend="fake_manila", limit=2, shots=500, seed=1, out=out)
    collected = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--jobs", str(out), "--json"])
    assert collected.exit_code == 0, collected.output
    again = json.loads(collected.output.strip().splitlines()[-1])
    assert again["accuracy"] == ran["accuracy"] and again["job_ids"] == ran["job_ids"]
    (out / "result.json").unlink()
    missing = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--jobs", str(out)])
    assert missing.exit_code == 1 and "ran locally and ended with the process" in missing.output
    assert f"--backend fake_manila --out {out}" in missing.output


def test_a_backend_object_evaluates_as_its_name_does(small_checkpoint):
    """evaluate(backend=FakeManilaV2()) runs the same compiled circuits as backend="fake_manila" (the
    same seed, the same figures); a Target, which runs nothing, is refused with what to give."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    by_name = evaluate(small_checkpoint, backend="fake_manila", limit=2, shots=500, seed=2)
    by_object = evaluate(small_checkpoint, backend=FakeManilaV2(), limit=2, shots=500, seed=2)
    assert by_object["backend"] == "fake_manila"
    assert by_object["accuracy"] == by_name["accuracy"] and by_object["acceptance"] == by_name["acceptance"]
    with pytest.raises(ValueError, match="a Target compiles but runs no shots"):
        evaluate(small_checkpoint, backend=FakeManilaV2().target)
