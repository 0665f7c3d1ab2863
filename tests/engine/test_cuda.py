"""The GPU path: its clean failure without a GPU, its kernels on numba's CUDA simulator, and the
same checks on a real device where one exists (never in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine import ExactEngine


def _has_gpu() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available()) and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"
    except Exception:
        return False


# Compares the GPU path with the CPU path on random small configurations: loss, gradient,
# distributions, acceptance, and sampled outcomes for one seed. Prints one JSON line of maxima.
_COMPARE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from qrnn_qiskit.core.config import QRNNConfig
    from qrnn_qiskit.engine import ExactEngine
    worst = {"loss": 0.0, "gradient": 0.0, "probabilities": 0.0, "acceptance": 0.0, "sampled": 0.0, "outcomes_equal": True}
    for seed in json.loads(sys.argv[1]):
        rng = np.random.default_rng(seed)
        cfg = QRNNConfig(input_width=int(rng.integers(1, 3)), workspace=int(rng.integers(1, 4)),
                         stages=int(rng.integers(0, 3)), order=int(rng.integers(1, 3)), degree=2)
        params = rng.normal(0, 1, cfg.num_parameters)
        inputs = rng.integers(0, cfg.num_outcomes, (2, 3))
        targets = rng.integers(0, cfg.num_outcomes, (2, 3))
        scored = np.array([True, False, True])
        cpu, gpu = ExactEngine(cfg), ExactEngine(cfg, engine="gpu")
        a, b = cpu.loss_and_gradient(params, inputs, targets, scored), gpu.loss_and_gradient(params, inputs, targets, scored)
        worst["loss"] = max(worst["loss"], abs(a[0] - b[0]))
        worst["gradient"] = max(worst["gradient"], float(np.abs(a[1] - b[1]).max()))
        worst["probabilities"] = max(worst["probabilities"], float(np.abs(a[2].probabilities - b[2].probabilities).max()))
        worst["acceptance"] = max(worst["acceptance"], float(np.abs(a[2].neuron_acceptance - b[2].neuron_acceptance).max()))
        s, t = cpu.simulate(params, inputs, seed=seed), gpu.simulate(params, inputs, seed=seed)
        worst["sampled"] = max(worst["sampled"], float(np.abs(s.probabilities - t.probabilities).max()))
        worst["outcomes_equal"] &= bool((s.outcomes == t.outcomes).all())
    print(json.dumps(worst))
    """
)


def _compare(seeds, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", _COMPARE, json.dumps(list(seeds))], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the failure without one cannot be shown")
def test_without_a_gpu_the_engine_says_so_and_names_the_cpu_engine():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    with pytest.raises(QRNNError, match=r"engine 'gpu'.*(no CUDA device|needs numba's CUDA target).*engine 'cpu'"):
        ExactEngine(cfg, engine="gpu")


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU")
def test_without_a_gpu_the_commands_fail_cleanly(tmp_path, small_checkpoint):
    from click.testing import CliRunner

    from qrnn_qiskit.cli import main

    result = CliRunner().invoke(main, ["eval", str(small_checkpoint), "--engine", "gpu"])
    assert result.exit_code == 1
    assert "engine 'gpu'" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_gpu_kernels_equal_the_cpu_path_on_the_cuda_simulator():
    """numba's CUDA simulator runs the kernels (threads, barriers, shared memory) on the CPU."""
    worst = _compare(range(3), env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert worst["outcomes_equal"]
    for key in ("loss", "gradient", "probabilities", "acceptance", "sampled"):
        assert worst[key] <= 1e-10, (key, worst)


@pytest.mark.skipif(not _has_gpu(), reason="no CUDA device")
def test_gpu_equals_the_cpu_path_on_a_real_device():
    worst = _compare(range(16))
    assert worst["outcomes_equal"]
    for key in ("loss", "gradient", "probabilities", "acceptance", "sampled"):
        assert worst[key] <= 1e-10, (key, worst)


@pytest.mark.skipif(not _has_gpu(), reason="no CUDA device")
def test_gpu_mnist_size_batch_equals_the_cpu_path():
    cfg = QRNNConfig(input_width=2, workspace=8, stages=2, order=2, degree=2)
    rng = np.random.default_rng(0)
    params = cfg.initial_parameters(seed=1, weights_spread=0.3)
    inputs = rng.integers(0, 4, (300, 20))
    targets = rng.integers(0, 2, (300, 20))
    scored = np.zeros(20, bool)
    scored[-1] = True
    a = ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    b = ExactEngine(cfg, engine="gpu").loss_and_gradient(params, inputs, targets, scored)
    assert abs(a[0] - b[0]) <= 1e-10
    np.testing.assert_allclose(b[1], a[1], atol=1e-10, rtol=0)
