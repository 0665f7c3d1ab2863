"""The compiled CPU backend of the exact engine: numpy in, numpy out, numba kernels in between.

:class:`CpuBackend` turns a parameter vector into full-pattern activation tables, runs the kernels
of :mod:`~qrnn_qiskit.engine.backends.cpu_kernels` and :mod:`~qrnn_qiskit.engine.backends.cpu_gradient`
(blocks of eight sequences side by side, threaded over the blocks) and hands back what the numpy
backend returns. The first call in a fresh environment compiles the kernels (``benchmarks/engine.py``
reports it as ``compile_s``); the machine code is cached on disk beside the module, or under
``NUMBA_CACHE_DIR`` where the package is read-only, so later processes only load it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba.core import config as numba_config

from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.engine.backends import cpu_gradient, cpu_kernels
from qrnn_qiskit.engine.backends.cpu_pick import fast_pick
from qrnn_qiskit.engine.backends.reductions import NEURONS_VANISH
from qrnn_qiskit.engine.plan import StepPlan, activation, bit_reverse

__all__ = ["CpuBackend", "DTYPES", "NOTICE_AFTER_S", "compile_notice", "kernel_array", "run_threaded", "sum_rows"]

DTYPES = {"float64": np.float64, "float32": np.float32}
logger = logging.getLogger("qrnn_qiskit")
#: seconds a kernel's first call in a process may take before it is said to be compiling (loading
#: the cached machine code takes about half a second; compiling it 6-8 s on two cores)
NOTICE_AFTER_S = 3.0
_NOTICED: list = []  # non-empty once this process has explained the compilation
_KERNELS = {"forward": cpu_kernels.forward, "loss_and_gradient": cpu_gradient.loss_and_gradient}


@contextlib.contextmanager
def vectorised():
    """Compile (on a first call) with LLVM's SLP vectoriser on, which numba leaves off by default.

    numba reads the switch each time it optimises a function, so it is set around each call into
    the kernels and restored afterwards. The pair updates are vectors already (cpu_lanes), but the
    loops over a block's eight lanes elsewhere lean on it: without it forward + gradient ran
    0.54-0.60x as fast (docs/decisions.md). Calls that find the kernels
    compiled (or cached on disk) are unaffected by the switch. It is process-wide while set: a
    function that another thread compiles at that moment is vectorised too, which changes no
    result (the vectoriser does not reorder floating-point arithmetic).
    """
    before = numba_config.SLP_VECTORIZE
    numba_config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba_config.SLP_VECTORIZE = before


@contextlib.contextmanager
def compile_notice(kernel):
    """Log (``qrnn_qiskit`` logger, INFO: the command line shows it) when a kernel's first call in
    this process takes long enough to be compiling it, and afterwards how long it took, so that a
    first run does not sit silent for most of a minute."""
    if getattr(kernel, "signatures", None):  # compiled or loaded earlier in this process
        yield
        return
    said = []

    def notice():
        said.append(True)
        if not _NOTICED:  # the explanation once a process; later kernels only say how long they took
            _NOTICED.append(True)
            logger.info("Compiling the exact engine's kernels for this machine: once per installation, 6-8 s "
                        "on two cores (longer on a busy machine); later runs load them from numba's cache.")

    start = time.perf_counter()
    timer = threading.Timer(NOTICE_AFTER_S, notice)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if said:
        stats = getattr(kernel, "stats", None)
        verb = "Compiled" if stats is None or stats.cache_misses else "Loaded"
        logger.info(f"{verb} the engine's kernels in {time.perf_counter() - start:.0f} s.")


def kernel_array(values, dtype) -> np.ndarray:
    """``values`` as the kernels' arguments are typed: C-contiguous, writable, of ``dtype``.

    numba compiles a kernel anew for each argument type, and a read-only array (a broadcast mask,
    say) is a type of its own: one read-only ``draw`` made the first training run compile the
    forward kernel twice. A copy is made only where ``values`` is not already such an array.
    """
    return np.require(values, dtype, ["C", "W"])


_POOL: list = []  # the threads the runs of blocks go to, made on first use


def run_threaded(name: str, runs: list[tuple], *args) -> None:
    """Kernel ``name`` once for each ``runs`` entry (its leading arguments) and ``args``, the runs
    on threads at once: the kernels release the GIL and write disjoint outputs.

    Why not numba's ``parallel=True``: its loop lowering was 40 % of the kernels' compilation in a
    fresh environment (measured with numba's compile events: the two parallel functions' own
    share, 36 s of 85 s on a loaded machine), and threads over whole runs give the same split.
    The first run goes alone when the kernel is not compiled yet, so that one thread compiles it.
    The calling thread runs the last run itself while the pool's threads run the others.
    """
    kernel = _KERNELS[name]
    with vectorised(), compile_notice(kernel):
        if not getattr(kernel, "signatures", None):
            kernel(*runs[0], *args)
            runs = runs[1:]
        if not runs:
            return
        others = len(runs) - 1
        if others and (not _POOL or _POOL[0][1] < others):
            _POOL[:] = [(ThreadPoolExecutor(max_workers=others, thread_name_prefix="qrnn-kernel"), others)]
        futures = [_POOL[0][0].submit(kernel, *run, *args) for run in runs[:-1]]
        kernel(*runs[-1], *args)
        for future in futures:
            future.result()


def sum_rows(rows: np.ndarray) -> np.ndarray:
    """``rows.sum(axis=0)`` added strictly in row order, from ``0.0`` (independent of threads and
    shards; numpy adds a single column pairwise). One vector addition a row, about a microsecond
    each, and one kernel fewer to compile and load (the first run's time the same, within noise)."""
    rows = np.asarray(rows, dtype=np.float64)
    total = np.zeros(rows.shape[1:])
    for row in rows:
        total += row
    return total


class CpuBackend:
    """Compiled forward, sampling and gradient for one :class:`~qrnn_qiskit.engine.plan.StepPlan`.

    Args:
        plan: the model's step plan.
        precision: ``"float64"`` (equal to the numpy backend to rounding) or ``"float32"`` (states
            and tables in single precision; gradients still accumulate in double).
    """

    def __init__(self, plan: StepPlan, precision: str = "float64") -> None:
        if precision not in DTYPES:
            raise ValueError(f"precision must be one of {sorted(DTYPES)}, got {precision!r}.")
        self.plan = plan
        self.dtype = DTYPES[precision]
        cfg = plan.config
        self.kinds = np.array([0 if op.kind == "u" else 1 for op in plan.ws_ops], np.int64)
        self.lanes = np.array([op.lane for op in plan.ws_ops], np.int64)
        self.indices = np.array([op.index for op in plan.ws_ops], np.int64)
        self.out_neurons = np.array([op.index for op in plan.out_ops], np.int64)
        self.out_lanes = np.array([op.lane for op in plan.out_ops], np.int64)
        self.masks = np.concatenate(plan.subset_masks).astype(np.int64)
        self.mask_offsets = np.cumsum([0] + [len(m) for m in plan.subset_masks]).astype(np.int64)
        self.bias_index = np.array([spec.bias_index for spec in cfg.neurons], np.int64)
        self.unitary_index = np.array(plan.unitary_indices, np.int64)
        #: whether the kernels pick the lanes' table entries by permute (cpu_pick)
        self.fast = fast_pick(cfg.num_outcomes, self.dtype)

    # ------------------------------------------------------------------ tables
    def tables(self, params: np.ndarray, derivatives: bool):
        """The kernels' activation tables (and with ``derivatives`` their derivatives) for ``params``."""
        plan = self.plan
        thetas = plan.neuron_angles(params)
        angles = params[list(plan.unitary_indices)]
        tabs = self.with_ws_layout(*activation(thetas, plan.power))
        tabs += [np.cos(0.5 * angles), np.sin(0.5 * angles)]
        tabs = tuple(np.ascontiguousarray(t, dtype=self.dtype) for t in tabs)
        if not derivatives:
            return tabs
        dtabs = self.with_ws_layout(*activation(thetas, plan.power, derivative=True))
        return tabs, tuple(np.ascontiguousarray(t, dtype=self.dtype) for t in dtabs)

    def with_ws_layout(self, c: np.ndarray, s: np.ndarray) -> list[np.ndarray]:
        """Full-pattern tables ``(N, 2**n)`` and the workspace neurons' layout, as the CPU kernels
        read it: ``(N, 2**W, 2, 2**I)``, cosine and sine of every io pattern of one workspace
        pattern side by side, so that the eight sequences of a block (one io pattern each) read
        neighbouring entries. (The GPU backend lays them out its own way.)"""
        cfg = self.plan.config
        shape = (cfg.num_neurons, 1 << cfg.workspace, 1, cfg.num_outcomes)
        return [c, s, np.concatenate([c.reshape(shape), s.reshape(shape)], axis=2)]

    @property
    def ops(self):
        return self.kinds, self.lanes, self.indices, self.out_neurons, self.out_lanes

    def kernel_tables(self, tabs: tuple) -> tuple:
        """``tabs`` (or their derivatives) as the CPU kernels take them: with :attr:`fast`, the
        input and work neurons' table as rows of eight ``(N, 2**W, 8)`` (a view), which makes the
        kernels pick its entries by permute; else as :meth:`tables` gives it."""
        if not self.fast:
            return tabs
        table = tabs[2]
        return tabs[:2] + (table.reshape(table.shape[0], table.shape[1], -1),) + tabs[3:]

    @property
    def layout(self):
        return self.masks, self.mask_offsets, self.bias_index, self.unitary_index

    # ------------------------------------------------------------------ errors
    def raise_failures(self, status: np.ndarray, status_step: np.ndarray, outcomes_io: np.ndarray) -> None:
        """Raise the numpy backend's error for the earliest failing step (first sequence there)."""
        bad = np.flatnonzero(status)
        if not bad.size:
            return
        t = int(status_step[bad].min())
        at_t = bad[status_step[bad] == t]
        if np.any(status[at_t] == NEURONS_VANISH):
            raise QRNNError(
                f"At step {t} the neurons' postselection has probability 0 for some sequence; "
                "the parameters make the circuit's acceptance vanish."
            )
        b = int(at_t[0])
        token = int(bit_reverse(np.array([outcomes_io[b, t]]), self.plan.config.input_width)[0])
        raise QRNNError(
            f"Postselecting step {t} of sequence {b} on outcome {token} is impossible: it has "
            "probability 0 under these parameters."
        )

    # ------------------------------------------------------------------ passes
    def forward(self, params, io_inputs, io_targets, draw, uniforms):
        """Probabilities, outcomes, taken probabilities and acceptance, all in io order."""
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        tabs = self.tables(params, derivatives=False)
        probs = np.zeros((batch, steps, cfg.num_outcomes))
        outcomes = np.zeros((batch, steps), np.int64)
        taken = np.zeros((batch, steps))
        acceptance = np.zeros((batch, steps))
        status = np.zeros(batch, np.int64)
        status_step = np.zeros(batch, np.int64)
        targets = io_targets if io_targets is not None else np.zeros_like(io_inputs)
        blocks = -(-batch // cpu_kernels.LANES)
        runs = self.chunks(batch)
        run_threaded(
            "forward", [(c * blocks // runs, (c + 1) * blocks // runs,
                         cpu_kernels.block_buffers(self.dtype, cfg.input_width, cfg.workspace)) for c in range(runs)],
            kernel_array(io_inputs, np.int64), kernel_array(targets, np.int64),
            kernel_array(draw, np.bool_), kernel_array(uniforms, np.float64), self.ops, self.kernel_tables(tabs),
            cfg.input_width,
            probs, outcomes, taken, acceptance, status, status_step,
        )  # fmt: skip
        self.raise_failures(status, status_step, outcomes)
        return probs, outcomes, taken, acceptance

    def loss_and_gradient_rows(self, params, io_inputs, io_targets, scored):
        """Per-sequence loss sums and gradient rows (see ``cpu_gradient.loss_and_gradient``)."""
        cfg = self.plan.config
        batch, steps = io_inputs.shape
        tabs, dtabs = self.tables(params, derivatives=True)
        probs = np.zeros((batch, steps, cfg.num_outcomes))
        acceptance = np.zeros((batch, steps))
        loss_rows = np.zeros(batch)
        grad_rows = np.zeros((batch, cfg.num_parameters))
        status = np.zeros(batch, np.int64)
        status_step = np.zeros(batch, np.int64)
        # the teacher-forced pass: no step drawn; the outcomes (the targets) and taken probabilities
        # it writes per sequence are not read back
        forced = (np.zeros((batch, steps), np.bool_), np.zeros((batch, steps)), np.zeros((batch, steps), np.int64),
                  np.zeros((batch, steps)))
        runs = self.chunks(batch)
        tabs, dtabs = self.kernel_tables(tabs), self.kernel_tables(dtabs)
        run_threaded(
            "loss_and_gradient",
            [(c, runs, cpu_gradient.run_buffers(self.dtype, steps, self.ops, tabs, cfg.input_width, cfg.workspace))
             for c in range(runs)],
            kernel_array(io_inputs, np.int64), kernel_array(io_targets, np.int64),
            kernel_array(scored, np.bool_), forced, self.ops, tabs, dtabs, self.layout, cfg.input_width,
            probs, acceptance, loss_rows, grad_rows, status, status_step,
        )  # fmt: skip
        self.raise_failures(status, status_step, io_targets)
        return loss_rows, grad_rows, probs, acceptance

    @staticmethod
    def chunks(batch: int) -> int:
        """One run of blocks of eight sequences per thread."""
        blocks = -(-batch // cpu_kernels.LANES)
        return max(1, min(blocks, numba.get_num_threads()))
