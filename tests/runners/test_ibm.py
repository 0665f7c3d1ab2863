"""IBM runner: credentials, backend names, refusals, the submitted payload, job retrieval and
end-to-end evaluations, live (against a fake cloud at the runtime client's network edge) and on a
fake backend (the runtime's local mode: Aer with the backend's noise model).

``QiskitRuntimeService``, ``IBMBackend``, ``Batch``, the executor ``Sampler``, ``RuntimeJobV2``
and the result decoders run for real; :mod:`fake_ibm_cloud` replaces only ``RuntimeClient`` (the
REST calls) and ``Account.list_instances`` (IBM Cloud's instance search and token check).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from click.testing import CliRunner
from fake_ibm_cloud import CRN, FakeCloud
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qrnn_qiskit.cli import main
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.runners.ibm import INSTANCE_ENV, TOKEN_ENV, CredentialError, IBMRunner, connect, resolve_backend

SECRET = "good-token"  # the fake cloud's valid token: it must never appear in any output


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    from qiskit_ibm_runtime.accounts import management

    fake = FakeCloud(backends={"ibm_manila": FakeManilaV2})
    fake.install(monkeypatch)
    # no saved account unless a test saves one, and none from the environment
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / "qiskit-ibm.json"))
    for name in (TOKEN_ENV, INSTANCE_ENV, "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL"):
        monkeypatch.delenv(name, raising=False)
    fake.account_file = tmp_path / "qiskit-ibm.json"
    return fake


class TestCredentials:
    def test_option_then_environment_then_saved_account(self, cloud):
        from qiskit_ibm_runtime import QiskitRuntimeService

        cloud.tokens = {"arg-token", "env-token", "saved-token"}
        env = {TOKEN_ENV: "env-token", INSTANCE_ENV: CRN}
        service, source = connect("arg-token", None, environ=env)
        assert source == "token" and cloud.seen_tokens[-1] == "arg-token"
        assert service.active_instance() == CRN  # the instance came from the environment
        assert connect(None, None, environ=env)[1] == TOKEN_ENV and cloud.seen_tokens[-1] == "env-token"
        QiskitRuntimeService.save_account(
            channel="ibm_quantum_platform", token="saved-token", instance=CRN, filename=str(cloud.account_file),
            set_as_default=True,
        )
        assert connect(None, None, environ={})[1] == "saved account" and cloud.seen_tokens[-1] == "saved-token"

    def test_no_credentials_names_option_and_variable(self, cloud):
        with pytest.raises(CredentialError, match=rf"pass token.*set {TOKEN_ENV}.*save_account"):
            connect(None, None, environ={})

    def test_refused_token_is_one_message_without_the_token(self, cloud):
        cloud.tokens = {"another-token"}
        with pytest.raises(CredentialError, match="refused the token from token") as info:
            connect(SECRET, CRN, environ={})
        assert SECRET not in str(info.value)

    def test_malformed_instance(self, cloud):
        with pytest.raises(CredentialError, match="instance 'no-such-instance' .* is malformed or not valid") as info:
            connect(SECRET, "no-such-instance", environ={})
        assert SECRET not in str(info.value)

    def test_no_network(self, cloud, monkeypatch):
        from qiskit_ibm_runtime.accounts import account

        def offline(acct):
            raise requests.exceptions.ConnectionError(f"Max retries exceeded with url: /identity/token ({acct.token})")

        monkeypatch.setattr(account.Account, "list_instances", offline)
        with pytest.raises(CredentialError, match="Could not reach IBM Quantum .* fake_torino") as info:
            connect(SECRET, CRN, environ={})
        assert SECRET not in str(info.value)

    def test_cli_reports_credential_errors_without_traceback(self, cloud, tmp_path):
        path = _tiny_checkpoint(tmp_path, steps=10)
        r = CliRunner().invoke(main, ["eval", str(path), "--backend", "ibm_manila"])
        assert r.exit_code == 1 and "No IBM Quantum credentials" in r.output and "Traceback" not in r.output


class TestNamesAndRefusals:
    def test_unknown_backends(self, cloud):
        with pytest.raises(ValueError, match="Unknown IBM backend 'quantinuum'; expected 'ibm_<name>'"):
            resolve_backend("quantinuum")
        with pytest.raises(ValueError, match="Unknown fake backend 'fake_nowhere'"):
            resolve_backend("fake_nowhere")
        with pytest.raises(ValueError, match="'ibm_nowhere' is not available.*this account can use: ibm_manila"):
            resolve_backend("ibm_nowhere", connect(SECRET, CRN, environ={})[0])
        r = CliRunner().invoke(main, ["eval", "x.npz", "--backend", "ionq_aria"])
        assert r.exit_code == 2 and "Unknown backend 'ionq_aria'" in r.output

    def test_rus_refused_on_a_static_backend(self):
        athens = resolve_backend("fake_athens")
        with pytest.raises(ValueError, match="fake_athens does not support if_else .* neuron_mode 'postselect'"):
            IBMRunner(athens, neuron_mode="rus:1")
        IBMRunner(athens, neuron_mode="postselect")  # static circuits are fine

    def test_dynamical_decoupling_refused_with_control_flow(self):
        with pytest.raises(ValueError, match="refuses dynamical decoupling for circuits with control flow"):
            IBMRunner(resolve_backend("fake_manila"), neuron_mode="rus:1", dynamical_decoupling=True)


def _tiny_checkpoint(tmp_path, steps: int = 200):
    """dna with 4 tokens (3 steps), I=3 W=1: 5 qubits; trained briefly on the exact engine."""
    from qrnn_qiskit.training.settings import TrainSettings
    from qrnn_qiskit.workflows.train import train

    settings = TrainSettings(
        dataset="dna", sentence_length=4, workspace=1, stages=0, order=1, degree=1, batch_size=16,
        learning_rate=0.1, steps=steps, seed=3, validate_every=10,
    )
    summary = train(settings, tmp_path / "run")
    return summary["checkpoints"]["best"]


def test_live_payload_is_isa_one_row_per_sequence_in_a_batch(cloud):
    service, _ = connect(SECRET, CRN, environ={})
    backend = resolve_backend("ibm_manila", service)
    assert type(backend).__name__ == "IBMBackend"
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    runner = IBMRunner(backend, shots=300, twirling=False)
    inputs = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0]])
    record = runner.submit(cfg, cfg.initial_parameters(seed=1), inputs)
    (sub,) = cloud.submitted
    assert sub.program_id == "executor" and sub.backend == "ibm_manila" and sub.shots == 300
    assert cloud.sessions == [{"id": sub.session_id, "backend": "ibm_manila", "mode": "batch"}]
    (circuit,) = sub.circuits
    allowed = set(backend.target.operation_names) | {"barrier"}
    assert {inst.operation.name for inst in circuit.data} <= allowed  # ISA: the device's operations only
    assert circuit.num_qubits == backend.num_qubits
    (arguments,) = sub.arguments
    bits = np.array([[float(b) for b in row] for row in inputs])
    np.testing.assert_array_equal(arguments, bits)  # one row per sequence, the input bits as values
    post = sub.params["quantum_program"]["passthrough_data"]["post_processor"]
    assert post["options"]["dynamical_decoupling"]["enable"] is False and post["twirling"] is False
    assert record.job_ids == ["job-0001"] and record.rows == [4]
    shots = runner.collect(cfg, record)
    assert shots.tokens.shape == (4, 300, 3) and shots.neurons_ok.shape == (4, 300, 3)
    # fetched again by id through the service: the same shots
    runner._jobs.clear()
    again = runner.collect(cfg, record, service=service)
    np.testing.assert_array_equal(again.tokens, shots.tokens)


def test_dynamical_decoupling_reaches_the_payload(cloud):
    service, _ = connect(SECRET, CRN, environ={})
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    runner = IBMRunner(resolve_backend("ibm_manila", service), shots=50, dynamical_decoupling=True)
    runner.submit(cfg, cfg.initial_parameters(seed=1), np.array([[0, 1]]))
    post = cloud.submitted[-1].params["quantum_program"]["passthrough_data"]["post_processor"]
    assert post["options"]["dynamical_decoupling"]["enable"] is True


@pytest.mark.slow
def test_live_end_to_end_with_cost_gate_and_job_retrieval(tmp_path, cloud):
    ckpt = _tiny_checkpoint(tmp_path)
    out = tmp_path / "ibm"
    # noise and the postselection of "don't care" tokens make accepted shots rare: many shots
    args = ["eval", str(ckpt), "--dataset", "dna", "--limit", "3", "--shots", "3000", "--json"]
    r = CliRunner().invoke(main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--instance", CRN, "--out", str(out)])
    assert r.exit_code == 1 and "Nothing was submitted to ibm_manila" in r.output and "QPU seconds" in r.output
    assert not (out / "jobs.json").exists() and not cloud.submitted
    r = CliRunner().invoke(
        main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--instance", CRN, "--out", str(out), "--yes"]
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    for key in ("accuracy", "acceptance", "accepted_shots", "expected_accuracy", "expected_acceptance",
                "two_qubit_gates", "depth", "qubits", "scored_step_distributions", "job_ids", "cost"):
        assert key in result
    assert result["accepted_shots"] > 0 and 0 <= result["accuracy"] <= 1 and result["qubits"] == 5
    # the exact engine's ideal figures for the same sequences stand beside the device's
    assert 0 < result["expected_acceptance"] < 1 and 0 <= result["expected_accuracy"] <= 1
    assert result["acceptance"] == result["accepted_shots"] / (3 * 3000)
    assert result["cost"]["circuits"] == 3 and result["cost"]["total_shots"] == 9000
    record = json.loads((out / "jobs.json").read_text())
    assert record["job_ids"] == result["job_ids"] and record["backend"] == "ibm_manila"
    assert record["rows"] == [3] and record["context"]["dataset"] == "dna"
    for text in (r.output, (out / "jobs.json").read_text(), (out / "result.json").read_text()):
        assert SECRET not in text
    # a closed laptop loses nothing: collect by job id (credentials from the environment this time)
    (job_id,) = result["job_ids"]
    env = {TOKEN_ENV: SECRET, INSTANCE_ENV: CRN}
    r = CliRunner(env=env).invoke(main, [*args, "--backend", "ibm_manila", "--job-id", job_id])
    assert r.exit_code == 0, r.output
    fetched = json.loads(r.output.strip().splitlines()[-1])
    assert fetched["job_ids"] == [job_id] and len(cloud.submitted) == 1  # nothing resubmitted
    for key in ("accepted_shots", "accuracy", "acceptance", "scored_step_distributions"):
        assert fetched[key] == result[key]
    # or from the run folder's record alone: backend, ids, dataset, limit, shots and mode
    r = CliRunner(env=env).invoke(main, ["eval", str(ckpt), "--jobs", str(out), "--json"])
    assert r.exit_code == 0, r.output
    from_record = json.loads(r.output.strip().splitlines()[-1])
    for key in ("accepted_shots", "accuracy", "acceptance", "job_ids", "backend", "shots"):
        assert from_record[key] == result[key]
    r = CliRunner(env=env).invoke(main, ["eval", str(ckpt), "--jobs", str(out), "--backend", "ibm_torino"])
    assert r.exit_code == 2 and "records jobs on ibm_manila, not backend ibm_torino" in r.output
    r = CliRunner(env=env).invoke(main, ["eval", str(ckpt), "--jobs", str(tmp_path)])
    assert r.exit_code == 1 and "No job record at" in r.output
    r = CliRunner(env=env).invoke(main, ["eval", str(ckpt), "--dataset", "dna", "--limit", "2", "--backend",
                                         "ibm_manila", "--job-id", job_id])
    assert r.exit_code == 2 and "shots hold 3 sequences but 2 are being evaluated" in r.output
    r = CliRunner(env=env).invoke(main, [*args, "--backend", "ibm_manila", "--job-id", "job-9999"])
    assert r.exit_code == 1 and "Could not fetch job 'job-9999'" in r.output
    assert SECRET not in r.output


@pytest.mark.slow
def test_fake_backend_end_to_end_offline(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path)
    r = CliRunner().invoke(main, ["eval", str(ckpt), "--dataset", "dna", "--limit", "3", "--shots", "3000",
                                  "--backend", "fake_manila", "--seed", "3", "--out", str(tmp_path / "f"), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert result["backend"] == "fake_manila" and result["accepted_shots"] > 0
    assert "Nothing was submitted" not in r.output  # no --yes needed offline
    assert json.loads((tmp_path / "f" / "jobs.json").read_text())["job_ids"] == result["job_ids"]
    assert {"expected_accuracy", "expected_acceptance", "two_qubit_gates", "depth", "qubits"} <= set(result)
    # offline jobs live only in the process that ran them
    r = CliRunner().invoke(main, ["eval", str(ckpt), "--dataset", "dna", "--limit", "3", "--backend", "fake_manila",
                                  "--job-id", result["job_ids"][0]])
    assert r.exit_code == 1 and "was not submitted in this process; collecting it needs the" in r.output


def test_build_reports_for_a_live_backend(cloud):
    r = CliRunner().invoke(main, ["build", "-I", "1", "-W", "2", "-S", "1", "--order", "1", "--degree", "1",
                                  "--target", "ibm_manila", "--token", SECRET, "--instance", CRN, "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    (target,) = report["targets"]
    assert target["target"] == "ibm_manila" and target["backend_qubits"] == 5 and target["two_qubit_gates"] > 0
    assert 0 < target["success_probability_estimate"] < 1
    assert set(report["synthesis"]["compare"]["two_qubit_gates_per_step"]["mc"]) == {"generic", "ibm_manila"}
    assert SECRET not in r.output
    r = CliRunner().invoke(main, ["build", "--target", "ibm_manila"])
    assert r.exit_code == 1 and "No IBM Quantum credentials" in r.output


def test_backend_shot_limit(cloud):
    backend = resolve_backend("ibm_manila", connect(SECRET, CRN, environ={})[0])
    limit = backend.configuration().max_shots
    with pytest.raises(ValueError, match=rf"ibm_manila accepts at most {limit} shots per circuit; got shots={limit + 1}"):
        IBMRunner(backend, shots=limit + 1)
    IBMRunner(backend, shots=limit)


def test_job_record_errors(tmp_path):
    from qrnn_qiskit.core.errors import QRNNError
    from qrnn_qiskit.runners.ibm import JobRecord, load_job_record, save_job_record

    path = save_job_record(JobRecord("ibm_manila", ["job-1"], [3], 4, 100, "postselect", {"dataset": "dna"}), tmp_path)
    assert load_job_record(tmp_path) == load_job_record(path)
    assert load_job_record(path).job_ids == ["job-1"]
    path.write_text("{not json")
    with pytest.raises(QRNNError, match="is not a readable job record"):
        load_job_record(path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(QRNNError, match="is not a qrnn job record"):
        load_job_record(path)
    path.write_text(json.dumps({"format": "qrnn-ibm-jobs", "version": 1, "backend": "ibm_manila"}))
    with pytest.raises(QRNNError, match="is an incomplete job record .*job_ids"):
        load_job_record(path)
    path.write_text(json.dumps({"format": "qrnn-ibm-jobs", "version": 9}))
    with pytest.raises(QRNNError, match="job-record version 9; this qrnn-qiskit reads version 1"):
        load_job_record(path)


@pytest.mark.slow
def test_fake_backend_amplified_with_measured_dont_care_steps(tmp_path):
    # the same offline path with amplify:3 circuits; measuring the two don't-care steps keeps the
    # shots that postselecting them on their targets would drop
    ckpt = _tiny_checkpoint(tmp_path, steps=60)
    args = ["eval", str(ckpt), "--dataset", "dna", "--limit", "1", "--neuron-mode", "amplify:3", "--json"]
    exact = {u: json.loads(CliRunner().invoke(main, [*args, "--unscored", u]).output.strip().splitlines()[-1])
             for u in ("postselect", "measure")}
    assert exact["measure"]["log10_expected_acceptance"] > exact["postselect"]["log10_expected_acceptance"] + 1
    r = CliRunner().invoke(main, [*args, "--shots", "500", "--backend", "fake_manila", "--seed", "5",
                                  "--unscored", "measure"])
    assert r.exit_code == 0, r.output
    measured = json.loads(r.output.strip().splitlines()[-1])
    assert measured["neuron_mode"] == "amplify:3" and measured["unscored"] == "measure"
    expected = measured["expected_acceptance"]
    assert expected > 0.8  # three order-1 neurons a step, each failing at most 2 %
    assert expected == pytest.approx(10 ** exact["measure"]["log10_expected_acceptance"], rel=0.05)
    # the device's noise only loses shots: accepted, but not more than the ideal figure allows
    assert 0 < measured["acceptance"] <= expected + 5 * np.sqrt(expected * (1 - expected) / 500)


class _ScriptedJob:
    """A job whose status walks through a script, one entry a poll (the runtime's job interface)."""

    def __init__(self, statuses):
        self.statuses, self.polls = list(statuses), 0

    def done(self):
        return self.statuses[min(self.polls, len(self.statuses) - 1)] == "DONE"

    def status(self):
        status = self.statuses[min(self.polls, len(self.statuses) - 1)]
        self.polls += 1
        return status


def test_waiting_for_a_job_says_each_status_and_repeats_a_long_one(caplog):
    from qrnn_qiskit.runners.ibm.runner import wait_for_job

    job = _ScriptedJob(["QUEUED", "QUEUED", "QUEUED", "RUNNING", "DONE"])
    with caplog.at_level("INFO", logger="qrnn_qiskit"):
        wait_for_job(job, "ibm_test: job 1 of 1 (abc)", poll_seconds=0.0, repeat_seconds=3600)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines[:2]] == ["ibm_test: job 1 of 1 (abc): QUEUED",
                                                          "ibm_test: job 1 of 1 (abc): RUNNING"]
    assert lines[-1].startswith("ibm_test: job 1 of 1 (abc): done after") and len(lines) == 3
    caplog.clear()
    with caplog.at_level("INFO", logger="qrnn_qiskit"):
        wait_for_job(_ScriptedJob(["QUEUED"] * 3 + ["DONE"]), "j", poll_seconds=0.0, repeat_seconds=0.0)
    assert sum("QUEUED" in r.getMessage() for r in caplog.records) == 3  # repeated while it stays
    caplog.clear()
    with caplog.at_level("INFO", logger="qrnn_qiskit"):
        wait_for_job(_ScriptedJob(["DONE"]), "j", poll_seconds=0.0)
    assert caplog.records == []  # a finished job waits silently
