"""IBM runner: credentials, backend names, refusals, the submitted payload, job retrieval and an
offline end-to-end evaluation on a fake backend (runtime local mode, Aer with its noise model).

The runtime service is replaced only where it would reach the network: the
``QiskitRuntimeService`` constructor (credential handling) and ``service.backend``/``service.job``
(which return real fake-backend and local job objects). Batch, the executor Sampler, the ISA
transpile and the local executor are the real qiskit-ibm-runtime code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.config import QRNNConfig
from qrnn_qiskit.runners import ibm
from qrnn_qiskit.runners.ibm import INSTANCE_ENV, TOKEN_ENV, CredentialError, IBMRunner, connect, resolve_backend
from qrnn_qiskit.training import Checkpoint, get_dataset, save_checkpoint

SECRET = "SECRET-token-0123456789"


class StubService:
    """Stands in for QiskitRuntimeService at the network edge; records how it was created."""

    created: list[dict] = []
    error: Exception | None = None
    jobs: dict = {}

    def __init__(self, **kwargs):
        StubService.created.append(kwargs)
        if StubService.error is not None:
            raise StubService.error

    def backend(self, name):
        from qiskit_ibm_runtime.fake_provider import FakeManilaV2

        if name != "ibm_manila":
            raise ValueError(f"no backend {name}")
        return FakeManilaV2()

    def backends(self):
        class B:
            name = "ibm_manila"

        return [B()]

    def job(self, job_id):
        return StubService.jobs[job_id]


@pytest.fixture
def stub(monkeypatch):
    StubService.created, StubService.error, StubService.jobs = [], None, {}
    monkeypatch.setattr(ibm, "_service_class", lambda: StubService)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(INSTANCE_ENV, raising=False)
    return StubService


class TestCredentials:
    def test_option_then_environment_then_saved_account(self, stub):
        env = {TOKEN_ENV: "env-token", INSTANCE_ENV: "env-instance"}
        assert connect("arg-token", None, environ=env)[1] == "--token"
        assert stub.created[-1] == {"channel": "ibm_quantum_platform", "token": "arg-token", "instance": "env-instance"}
        assert connect("arg-token", "arg-instance", environ=env)[1] == "--token"
        assert stub.created[-1]["instance"] == "arg-instance"
        assert connect(None, None, environ=env)[1] == TOKEN_ENV
        assert stub.created[-1]["token"] == "env-token"
        assert connect(None, None, environ={})[1] == "saved account"
        assert stub.created[-1] == {}

    def test_no_credentials_names_option_and_variable(self, stub):
        from qiskit_ibm_runtime.accounts import AccountNotFoundError

        stub.error = AccountNotFoundError("Unable to find account.")
        with pytest.raises(CredentialError, match=rf"pass --token.*set {TOKEN_ENV}.*save_account"):
            connect(None, None, environ={})

    @pytest.mark.parametrize(
        ("error", "match"),
        [
            ("unauthorized", "refused the token from --token"),
            ("instance", "instance 'crn:bad' .* is malformed"),
            ("network", "Could not reach IBM Quantum"),
            ("other", "Could not create the IBM Quantum service from --token: RuntimeError"),
        ],
    )
    def test_service_errors_are_one_message_without_the_token(self, stub, error, match):
        from qiskit_ibm_runtime.accounts import InvalidAccountError
        from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

        stub.error = {
            "unauthorized": IBMNotAuthorizedError(f"401 Client Error for token {SECRET}"),
            "instance": InvalidAccountError(f"Invalid instance for {SECRET}"),
            "network": requests.exceptions.ConnectionError(f"Max retries exceeded ({SECRET})"),
            "other": RuntimeError(f"boom {SECRET}"),
        }[error]
        with pytest.raises(CredentialError, match=match) as info:
            connect(SECRET, "crn:bad", environ={})
        assert SECRET not in str(info.value)

    def test_cli_reports_credential_errors_without_traceback(self, stub, tmp_path):
        from qiskit_ibm_runtime.accounts import AccountNotFoundError

        path = _tiny_checkpoint(tmp_path)
        stub.error = AccountNotFoundError("none")
        r = CliRunner().invoke(main, ["eval", str(path), "--backend", "ibm_manila"])
        assert r.exit_code == 1 and "No IBM Quantum credentials" in r.output and "Traceback" not in r.output


class TestNamesAndRefusals:
    def test_unknown_backends(self, stub):
        with pytest.raises(ValueError, match="Unknown IBM backend 'quantinuum'; expected 'ibm_<name>'"):
            resolve_backend("quantinuum")
        with pytest.raises(ValueError, match="Unknown fake backend 'fake_nowhere'"):
            resolve_backend("fake_nowhere")
        with pytest.raises(ValueError, match="'ibm_nowhere' is not available.*this account can use: ibm_manila"):
            resolve_backend("ibm_nowhere", StubService())
        r = CliRunner().invoke(main, ["eval", "x.npz", "--backend", "ionq_aria"])
        assert r.exit_code == 1 and "Unknown --backend 'ionq_aria'" in r.output

    def test_rus_refused_on_a_static_backend(self):
        athens = resolve_backend("fake_athens")
        with pytest.raises(ValueError, match="fake_athens does not support if_else .* --neuron-mode postselect"):
            IBMRunner(athens, neuron_mode="rus:1")
        IBMRunner(athens, neuron_mode="postselect")  # static circuits are fine

    def test_dynamical_decoupling_refused_with_control_flow(self):
        with pytest.raises(ValueError, match="refuses dynamical decoupling for circuits with control flow"):
            IBMRunner(resolve_backend("fake_manila"), neuron_mode="rus:1", dynamical_decoupling=True)


def _tiny_checkpoint(tmp_path, steps: int = 200):
    """dna with 4 tokens (3 steps), I=3 W=1: 5 qubits; trained briefly on the exact engine."""
    from qrnn_qiskit.training.trainer import TrainSettings, train

    settings = TrainSettings(
        dataset="dna", sentence_length=4, workspace=1, stages=0, order=1, degree=1, batch_size=16,
        learning_rate=0.1, steps=steps, seed=3, validate_every=10,
    )
    summary = train(settings, tmp_path / "run")
    return summary["checkpoints"]["best"]


def test_payload_is_isa_with_one_row_per_sequence(tmp_path, monkeypatch):
    from qiskit_ibm_runtime.fake_provider.local_service import QiskitRuntimeLocalService

    seen = []
    original = QiskitRuntimeLocalService._run_executor

    def record(self, backend, options, program, dry_run=False):
        seen.append((backend.name, program))
        return original(self, backend, options, program, dry_run=dry_run)

    monkeypatch.setattr(QiskitRuntimeLocalService, "_run_executor", record)
    backend = resolve_backend("fake_manila")
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    params = cfg.initial_parameters(seed=1)
    runner = IBMRunner(backend, shots=300, seed=5)
    inputs = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0]])
    record_ = runner.submit(cfg, params, inputs)
    assert record_.rows == [4] and len(record_.job_ids) == 1
    (name, program), = seen
    assert name == "fake_manila" and program.shots == 300
    (item,) = program.items
    allowed = set(backend.target.operation_names) | {"barrier"}
    assert {inst.operation.name for inst in item.circuit.data} <= allowed  # ISA: the backend's operations only
    assert item.circuit.num_qubits == backend.num_qubits  # laid out on the device
    assert np.asarray(item.circuit_arguments).shape == (4, 3)  # one row per sequence, one column per input bit
    assert runner.sampler_options()["twirling"] == {"enable_gates": False, "enable_measure": False}
    shots = runner.collect(cfg, record_)
    assert shots.tokens.shape == (4, 300, 3) and shots.neurons_ok.shape == (4, 300, 3)


def test_end_to_end_on_a_fake_backend_and_job_retrieval(tmp_path, stub, monkeypatch):
    ckpt = _tiny_checkpoint(tmp_path)
    out = tmp_path / "ibm"
    # noise and the postselection of "don't care" tokens make accepted shots rare: many shots
    args = ["eval", str(ckpt), "--dataset", "dna", "--limit", "3", "--shots", "6000", "--seed", "2", "--json"]
    submit = IBMRunner.submit

    def keep_jobs(self, *a, **k):  # the service would keep submitted jobs; serve them by id below
        record = submit(self, *a, **k)
        stub.jobs.update({job.job_id(): job for job in self._jobs})
        return record

    monkeypatch.setattr(IBMRunner, "submit", keep_jobs)
    # a "live" backend name: the stub service hands back a real fake backend object
    r = CliRunner().invoke(main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--out", str(out)])
    assert r.exit_code == 1 and "Nothing was submitted to ibm_manila" in r.output and "QPU seconds" in r.output
    assert not (out / "jobs.json").exists() and not stub.jobs
    r = CliRunner().invoke(main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--out", str(out), "--yes"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    for key in ("accuracy", "acceptance", "accepted_shots", "expected_accuracy", "expected_acceptance",
                "two_qubit_gates", "depth", "qubits", "scored_step_distributions", "job_ids"):
        assert key in result
    assert result["accepted_shots"] > 0 and 0 <= result["accuracy"] <= 1 and result["qubits"] == 5
    # the exact engine's ideal figures for the same sequences stand beside the device's
    assert 0 < result["expected_acceptance"] < 1 and 0 <= result["expected_accuracy"] <= 1
    assert result["acceptance"] == result["accepted_shots"] / (3 * 6000)
    record = json.loads((out / "jobs.json").read_text())
    assert record["job_ids"] == result["job_ids"] and record["backend"] == "ibm_manila"
    assert record["rows"] == [3] and record["context"]["dataset"] == "dna"
    for text in (r.output, (out / "jobs.json").read_text(), (out / "result.json").read_text()):
        assert SECRET not in text
    # collect later by job id: same shots, same figures
    (job_id,) = result["job_ids"]
    r = CliRunner().invoke(main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--job-id", job_id])
    assert r.exit_code == 0, r.output
    fetched = json.loads(r.output.strip().splitlines()[-1])
    assert fetched["job_ids"] == [job_id]
    for key in ("accepted_shots", "accuracy", "acceptance", "scored_step_distributions"):
        assert fetched[key] == result[key]
    r = CliRunner().invoke(main, ["eval", str(ckpt), "--dataset", "dna", "--limit", "2", "--backend", "ibm_manila",
                                  "--token", SECRET, "--job-id", job_id])
    assert r.exit_code == 1 and "jobs hold 3 sequences but 2 are being evaluated" in r.output
    r = CliRunner().invoke(main, [*args, "--backend", "ibm_manila", "--token", SECRET, "--job-id", "nope"])
    assert r.exit_code == 1 and "Could not fetch job 'nope'" in r.output
