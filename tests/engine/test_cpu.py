"""The compiled CPU path against the numpy path it replaces, and its own guarantees.

The numpy path is the reference (itself checked against the gate-level circuit in
``test_exact.py``); the compiled path must give the same distributions, acceptance, loss and
gradient to 1e-12 in float64, the same random draws for the same seed, gradients that do not depend
on the number of threads or on how a batch is split, and measured closeness in float32.
"""

from __future__ import annotations

import logging
import math

import numba
import numpy as np
import pytest

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.backends import cpu_gradient, cpu_kernels, cpu_lanes, cpu_pick
from qrnn_qiskit.engine.backends.cpu import CpuBackend
from qrnn_qiskit.engine.memory import CPU_BLOCK
from qrnn_qiskit.engine.plan import StepPlan


def _case(seed: int):
    """A random configuration (I 1-3, W 1-5, S 0-2, k 1-3, d 1-3) with a batch of 4 x 6 steps."""
    rng = np.random.default_rng(1000 + seed)
    input_width = int(rng.integers(1, 4))
    workspace = int(rng.integers(1, 6))
    cfg = QRNNConfig(
        input_width=input_width,
        workspace=workspace,
        stages=int(rng.integers(0, 3)),
        order=int(rng.integers(1, 4)),
        degree=int(rng.integers(1, min(3, input_width + workspace - 1) + 1)),
    )
    params = rng.normal(0.0, 1.0, cfg.num_parameters)
    inputs = rng.integers(0, cfg.num_outcomes, (4, 6))
    targets = rng.integers(0, cfg.num_outcomes, (4, 6))
    scored = rng.random(6) < 0.5
    scored[-1] = True
    return cfg, params, inputs, targets, scored, rng


@pytest.mark.parametrize("seed", range(16))
def test_loss_gradient_and_distributions_equal_numpy(seed):
    cfg, params, inputs, targets, scored, _ = _case(seed)
    ref_loss, ref_grad, ref = ExactEngine(cfg, engine="numpy").loss_and_gradient(params, inputs, targets, scored)
    loss, grad, got = ExactEngine(cfg, engine="cpu").loss_and_gradient(params, inputs, targets, scored)
    assert abs(loss - ref_loss) <= 1e-12
    np.testing.assert_allclose(grad, ref_grad, atol=1e-12, rtol=0)
    assert np.abs(ref_grad).max() > 1e-5  # a gradient far above the tolerance
    for field in ("probabilities", "outcome_probability", "neuron_acceptance"):
        np.testing.assert_allclose(getattr(got, field), getattr(ref, field), atol=1e-12, rtol=0)
    np.testing.assert_array_equal(got.outcomes, ref.outcomes)


@pytest.mark.parametrize("seed", range(8))
def test_sampling_draws_the_same_outcomes_for_a_seed(seed):
    cfg, params, inputs, targets, _, rng = _case(seed)
    mask = rng.random(inputs.shape) < 0.5
    for kwargs in ({"targets": None}, {"targets": targets, "sample": mask}):
        ref = ExactEngine(cfg, engine="numpy").simulate(params, inputs, seed=seed, **kwargs)
        got = ExactEngine(cfg, engine="cpu").simulate(params, inputs, seed=seed, **kwargs)
        np.testing.assert_array_equal(got.outcomes, ref.outcomes)
        np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=1e-12, rtol=0)
        np.testing.assert_allclose(got.outcome_probability, ref.outcome_probability, atol=1e-12, rtol=0)


def test_loss_without_gradient_equals_numpy():
    cfg, params, inputs, targets, scored, _ = _case(3)
    ref = ExactEngine(cfg, engine="numpy").loss(params, inputs, targets, scored)
    assert abs(ExactEngine(cfg).loss(params, inputs, targets, scored) - ref) <= 1e-12


def _two_qubit_case(stages: int, seed: int, batch: int):
    """An I=2 W=4 model with random weights, ``batch`` sequences of 7 steps, every step scored."""
    cfg = QRNNConfig(input_width=2, workspace=4, stages=stages, order=2, degree=2)
    rng = np.random.default_rng(seed)
    params = rng.normal(0.0, 1.0, cfg.num_parameters)
    inputs = rng.integers(0, 4, (batch, 7))
    targets = rng.integers(0, 4, (batch, 7))
    return cfg, params, inputs, targets, np.ones(7, bool), rng


def test_rows_of_shards_sum_to_the_whole_batch_bit_for_bit():
    cfg, params, inputs, targets, scored, _ = _two_qubit_case(1, 5, 9)
    engine = ExactEngine(cfg)
    _, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    rows = [engine.loss_and_gradient_rows(params, inputs[a:b], targets[a:b], scored)[1] for a, b in ((0, 2), (2, 7), (7, 9))]
    combined = engine.sum_rows(np.concatenate(rows)) / (9 * 7)
    np.testing.assert_array_equal(combined, grad)
    # negative control: summing per-shard sums is a different association and is not bit-equal
    shard_sums = sum(r.sum(axis=0) for r in rows) / (9 * 7)
    np.testing.assert_allclose(shard_sums, grad, atol=1e-13)
    assert not np.array_equal(shard_sums, grad)


def test_results_do_not_depend_on_the_number_of_threads():
    cfg = QRNNConfig(input_width=2, workspace=5, stages=2, order=2, degree=2)
    rng = np.random.default_rng(8)
    params = rng.normal(0, 1, cfg.num_parameters)
    inputs = rng.integers(0, 4, (13, 9))
    targets = rng.integers(0, 4, (13, 9))
    engine = ExactEngine(cfg)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = engine.loss_and_gradient(params, inputs, targets, np.ones(9, bool))
        one_forward = engine.simulate(params, inputs, targets)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = engine.loss_and_gradient(params, inputs, targets, np.ones(9, bool))
        many_forward = engine.simulate(params, inputs, targets)
    finally:
        numba.set_num_threads(before)
    assert one[0] == many[0]
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one_forward.probabilities, many_forward.probabilities)
    np.testing.assert_array_equal(one_forward.neuron_acceptance, many_forward.neuron_acceptance)


def test_float32_is_close_to_float64_and_measurably_different():
    cfg, params, inputs, targets, scored, _ = _case(2)
    loss64, grad64, res64 = ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    loss32, grad32, res32 = ExactEngine(cfg, precision="float32").loss_and_gradient(params, inputs, targets, scored)
    assert abs(loss32 - loss64) < 1e-5
    np.testing.assert_allclose(grad32, grad64, atol=1e-5)
    np.testing.assert_allclose(res32.probabilities, res64.probabilities, atol=1e-5)
    assert not np.array_equal(grad32, grad64)  # it really ran in single precision


def test_impossible_postselection_names_the_step_sequence_and_outcome_in_both_passes():
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = np.zeros(cfg.num_parameters)
    params[3] = -math.pi / 2  # output angle 0: the output reads 0 with certainty
    engine = ExactEngine(cfg)
    message = r"Postselecting step 1 of sequence 1 on outcome 1 is impossible"
    with pytest.raises(QRNNError, match=message):
        engine.simulate(params, [[0, 0], [0, 0]], [[0, 0], [0, 1]])
    with pytest.raises(QRNNError, match=message):
        engine.loss_and_gradient(params, [[0, 0], [0, 0]], [[0, 0], [0, 1]], [True, True])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "fpga"}, r"engine must be one of cpu, numpy, gpu, got 'fpga'"),
        ({"engine": "numpy", "precision": "float32"}, r"needs engine 'cpu' or 'gpu'"),
        ({"precision": "float16"}, r"precision must be one of float64, float32, got 'float16'"),
    ],
)
def test_bad_engine_options_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExactEngine(QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1), **kwargs)


@pytest.mark.parametrize("mode", ["postselect", "amplify:3"])
def test_numpy_rows_equal_the_compiled_rows_and_do_not_depend_on_the_batch(mode):
    """Every backend returns per-sequence rows: the numpy path's equal the compiled path's (to
    1e-12; postselect) and a sequence's row has the same bits alone, in a shard and in the batch."""
    cfg, params, _, _, scored, rng = _case(2)
    inputs = rng.integers(0, cfg.num_outcomes, (5, 6))
    targets = rng.integers(0, cfg.num_outcomes, (5, 6))
    engine = ExactEngine(cfg, engine="numpy", neuron_mode=mode)
    losses, rows, _ = engine.loss_and_gradient_rows(params, inputs, targets, scored)
    assert np.abs(rows).max() > 1e-3
    if mode == "postselect":
        cpu_losses, cpu_rows, _ = ExactEngine(cfg).loss_and_gradient_rows(params, inputs, targets, scored)
        np.testing.assert_allclose(losses, cpu_losses, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rows, cpu_rows, rtol=0, atol=1e-12)
    for part in (slice(0, 1), slice(1, 3), slice(3, 5), slice(2, 3), slice(0, 4), slice(1, 4)):
        shard = engine.loss_and_gradient_rows(params, inputs[part], targets[part], scored)
        np.testing.assert_array_equal(shard[0], losses[part])
        np.testing.assert_array_equal(shard[1], rows[part])


def test_a_sequence_gets_the_same_bits_in_every_lane_and_block():
    """The kernels run blocks of eight sequences side by side (the last block padded); a sequence's
    loss and gradient row must not depend on its neighbours, its lane or the padding."""
    assert cpu_kernels.LANES == 8
    cfg, params, _, _, scored, rng = _case(6)
    inputs = rng.integers(0, cfg.num_outcomes, (19, 6))
    targets = rng.integers(0, cfg.num_outcomes, (19, 6))
    engine = ExactEngine(cfg)
    losses, rows = engine.loss_and_gradient_rows(params, inputs, targets, scored)[:2]
    assert np.abs(rows).max() > 1e-3
    for b in range(19):
        # alone (lane 0), and in lanes 7, 3 and 1 of a block
        for start in {b, max(0, b - 7), max(0, b - 3), max(0, b - 1)}:
            part = engine.loss_and_gradient_rows(params, inputs[start:b + 1], targets[start:b + 1], scored)
            assert part[0][b - start] == losses[b]
            np.testing.assert_array_equal(part[1][b - start], rows[b])


def test_the_memory_estimate_counts_the_kernels_block_of_sequences():
    """``engine.memory`` sizes the compiled path by ``CPU_BLOCK`` sequences a thread without
    importing numba; it must be the kernels' block."""
    assert CPU_BLOCK == cpu_kernels.LANES


def test_the_vectoriser_switch_is_set_only_around_kernel_calls():
    """The kernels compile with LLVM's SLP vectoriser, which numba leaves off; the switch is
    process-wide, so it must be back to its value after each call, also after an error."""
    from numba.core import config

    from qrnn_qiskit.engine.backends.cpu import vectorised as _vectorised

    before = config.SLP_VECTORIZE
    with _vectorised():
        assert config.SLP_VECTORIZE == 1
    assert config.SLP_VECTORIZE == before
    with pytest.raises(RuntimeError), _vectorised():
        raise RuntimeError("a kernel failed")
    assert config.SLP_VECTORIZE == before
    cfg, params, inputs, targets, scored, _ = _case(1)
    ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    assert config.SLP_VECTORIZE == before


class _Recorder(logging.Handler):
    """The ``qrnn_qiskit`` logger's lines (the command line turns off propagation to the root)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def library_log():
    logger = logging.getLogger("qrnn_qiskit")
    handler, level = _Recorder(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


class _FirstCall:
    """A stand-in kernel on its first call in a process: no signatures yet; ``stats`` as numba's."""

    signatures = []

    def __init__(self, misses):
        self.stats = type("Stats", (), {"cache_misses": misses})()


def test_a_slow_first_kernel_call_says_it_is_compiling_and_how_long_it_took(monkeypatch, library_log):
    import time

    from qrnn_qiskit.engine.backends import cpu as compiled

    monkeypatch.setattr(compiled, "NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(compiled, "_NOTICED", [])
    with compiled.compile_notice(_FirstCall({"(int64,)": 1})):
        time.sleep(0.5)
    assert len(library_log) == 2
    assert library_log[0].startswith("Compiling the exact engine's kernels for this machine")
    assert library_log[1].startswith("Compiled the engine's kernels in")
    with compiled.compile_notice(_FirstCall({})):  # slow, but numba found it in its cache
        time.sleep(0.5)
    assert len(library_log) == 3  # the explanation is given once a process
    assert library_log[2].startswith("Loaded the engine's kernels in")


def test_a_quick_or_repeated_kernel_call_says_nothing(monkeypatch, library_log):
    import time

    from qrnn_qiskit.engine.backends import cpu as compiled
    from qrnn_qiskit.engine.backends import cpu_gradient as _kernels

    monkeypatch.setattr(compiled, "NOTICE_AFTER_S", 0.3)
    with compiled.compile_notice(_FirstCall({})):  # a first call that returns before the notice
        pass
    time.sleep(0.5)  # the cancelled notice never fires
    # the real kernel, compiled or loaded by now (loading it alone takes about 0.4 s: not quick)
    monkeypatch.setattr(compiled, "NOTICE_AFTER_S", 600.0)
    cfg, params, inputs, targets, scored, _ = _case(1)
    ExactEngine(cfg).loss_and_gradient(params, inputs, targets, scored)
    assert _kernels.loss_and_gradient.signatures
    monkeypatch.setattr(compiled, "NOTICE_AFTER_S", 0.0)
    with compiled.compile_notice(_kernels.loss_and_gradient):
        time.sleep(0.2)
    assert library_log == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("permute", [True, False])
def test_pick8_returns_each_lanes_entry_with_and_without_the_permute(monkeypatch, dtype, permute):
    """``cpu_pick.pick8`` emits a permute instruction where the target CPU has one and LLVM's
    generic element extraction where not; both must return ``row[index[lane]]`` exactly."""
    if permute and not cpu_pick.fast_pick(4, dtype):
        pytest.skip("this CPU has no permute for this precision")
    if not permute:
        monkeypatch.setattr(cpu_pick, "target_features", lambda: set())

    @numba.njit
    def picked(values, index, out):  # compiled here, so the codegen sees the patch
        order = (index[0], index[1], index[2], index[3], index[4], index[5], index[6], index[7])
        cpu_lanes.store(out, 0, cpu_pick.pick8(cpu_lanes.load(values, 0), order))

    rng = np.random.default_rng(3)
    for _ in range(20):
        values = rng.normal(size=(1, 8)).astype(dtype)
        index = rng.integers(0, 8, 8).astype(np.uint64)
        out = np.zeros((1, 8), dtype)
        picked(values, index, out)
        np.testing.assert_array_equal(out[0], values[0, index])


def test_fast_pick_needs_rows_of_eight_and_the_cpus_permute(monkeypatch):
    monkeypatch.setattr(cpu_pick, "target_features", lambda: {"avx2", "avx512f"})
    assert cpu_pick.fast_pick(4, np.float64) and cpu_pick.fast_pick(4, np.float32)
    assert not cpu_pick.fast_pick(2, np.float64) and not cpu_pick.fast_pick(8, np.float64)
    monkeypatch.setattr(cpu_pick, "target_features", lambda: {"avx2"})
    assert not cpu_pick.fast_pick(4, np.float64) and cpu_pick.fast_pick(4, np.float32)
    monkeypatch.setattr(cpu_pick, "target_features", lambda: set())
    assert not cpu_pick.fast_pick(4, np.float32)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_permute_path_gives_the_gather_paths_bits(precision):
    """Input and work neurons read their table entries by permute (two-qubit inputs on CPUs that
    have it) or one by one: the same numbers, so the same bits in every result."""
    cfg, params, inputs, targets, scored, rng = _two_qubit_case(2, 11, 13)
    draw = rng.random((13, 7)) < 0.5
    uniforms = rng.random((13, 7))
    results = {}
    for fast in (1, 0):
        backend = CpuBackend(StepPlan(cfg), precision)
        if fast and not backend.fast:
            pytest.skip("this CPU has no permute for this precision")
        backend.fast = bool(fast)
        results[fast] = (backend.forward(params, inputs, targets, draw, uniforms)
                         + backend.loss_and_gradient_rows(params, inputs, targets, scored))
    assert np.abs(results[1][5]).max() > 1e-3  # gradient rows
    for a, b in zip(results[1], results[0]):
        np.testing.assert_array_equal(a, b)


def test_read_only_or_other_typed_inputs_reuse_the_compiled_kernels():
    """numba compiles a kernel once per argument type. Masks arrive read-only (broadcast) or as
    other integer and float types; the backend hands the kernels one type of each, so a second
    call with such inputs compiles nothing new and gives the same bits."""
    cfg, params, inputs, targets, scored, rng = _case(3)
    backend = CpuBackend(StepPlan(cfg), "float64")
    draw = rng.random((4, 6)) < 0.5
    uniforms = rng.random((4, 6)).astype(np.float32).astype(np.float64)  # the same numbers in float32
    first = backend.forward(params, inputs, targets, draw, uniforms)
    rows = backend.loss_and_gradient_rows(params, inputs, targets, scored)
    compiled = (len(cpu_kernels.forward.signatures), len(cpu_gradient.loss_and_gradient.signatures))
    read_only = np.broadcast_to(draw[:1], (1, 6))  # contiguous and not writable: no copy by ascontiguousarray
    assert not read_only.flags.writeable
    again = backend.forward(params, inputs[:1].astype(np.int32), targets[:1], read_only, uniforms[:1].astype(np.float32))
    rows_again = backend.loss_and_gradient_rows(params, inputs.astype(np.int16), targets, np.broadcast_to(scored, (6,)))
    assert (len(cpu_kernels.forward.signatures), len(cpu_gradient.loss_and_gradient.signatures)) == compiled
    assert first[0].shape[0] == 4 and first[1][0].any()  # a drawn outcome that is not always 0
    for a, b in zip(again, first):
        np.testing.assert_array_equal(a, b[:1])
    for a, b in zip(rows_again, rows):
        np.testing.assert_array_equal(a, b)


def test_sum_rows_adds_in_row_order_from_zero():
    """Gradients are summed row by row, from +0.0, so that a batch's sum does not depend on how
    it was split: checked against plain Python floats added in order, on rows where numpy's
    pairwise sum rounds otherwise, and on an all -0.0 column (which sums to +0.0)."""
    from qrnn_qiskit.engine.backends.cpu import sum_rows

    rng = np.random.default_rng(8)
    rows = rng.normal(size=(300, 5)) * 10.0 ** rng.integers(-8, 8, (300, 5))
    rows[:, 4] = -0.0
    total = sum_rows(rows)
    for i in range(5):
        expected = 0.0
        for value in rows[:, i].tolist():
            expected += value
        assert total[i] == expected and math.copysign(1.0, total[i]) == math.copysign(1.0, expected)
    assert not np.signbit(total[4])
    column = np.ascontiguousarray(rows[:, :1])  # the loss rows' shape, (B, 1)
    assert sum_rows(column)[0] == total[0] != column.sum(axis=0)[0]  # numpy adds one column pairwise


def test_a_fresh_environment_compiles_few_functions(tmp_path, monkeypatch):
    """In a new process with an empty kernel cache, a training step's two kernels compile each
    function they call once and allocate nothing themselves (numba compiles its ``np.empty`` and
    ``np.zeros`` anew for each shape type, dtype and caller; the backend hands each run its
    buffers). Each numba function costs 40-70 ms in a fresh environment, so this guards the
    first run's time (docs/decisions.md; ``benchmarks/first_use.py``) by a count, not a timing."""
    import json
    import subprocess
    import sys

    child = """
import collections, json
import numpy as np
from numba.core import event
from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.engine import ExactEngine
compiled = collections.Counter()
class Count(event.Listener):
    def on_start(self, ev):
        compiled[ev.data["dispatcher"].py_func.__qualname__] += 1
    def on_end(self, ev):
        pass
event.register("numba:compile", Count())
cfg = QRNNConfig(input_width=2, workspace=3, stages=1, order=2, degree=2)
engine = ExactEngine(cfg)
params = np.random.default_rng(1).normal(size=cfg.num_parameters)
inputs = np.random.default_rng(2).integers(0, 4, (9, 5))
engine.loss_and_gradient(params, inputs, inputs, np.ones(5, bool))
engine.simulate(params, inputs, inputs)
print(json.dumps(compiled))
"""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    compiled = json.loads(done.stdout.strip().splitlines()[-1])
    assert compiled["forward"] == 1 and compiled["loss_and_gradient"] == 1
    assert all(count == 1 for count in compiled.values()), compiled
    assert not any(word in name for name in compiled for word in ("empty", "zeros", "zero_fill", "allocate")), compiled


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_run_buffers_start_on_a_cache_line(dtype):
    """The buffers the backend hands the kernels start at a multiple of 64 bytes (numpy's own
    start at 16) and are ordinary writable C arrays of the asked shape and dtype."""
    for shape in [(8,), (3, 8), (5, 4, 8), (2, 3, 4, 8)]:
        for _ in range(5):
            array = cpu_kernels.aligned_empty(shape, dtype)
            assert array.ctypes.data % cpu_kernels.ALIGN == 0
            assert array.shape == shape and array.dtype == dtype
            assert array.flags.c_contiguous and array.flags.writeable
