"""Each lane's table entry picked from one row by a vector permute, for the compiled CPU kernels.

An input or work neuron reads, for each of a block's eight sequences, the cosine and sine of that
sequence's io pattern: ``tab[x, 0 / 1, io[lane]]``. Read entry by entry, LLVM makes that a gather
(``vgatherqpd``), which on this project's machine (AMD EPYC, Zen 5) cost 8-9 ns a pair update of
eight lanes in a prototype loop, against 1.6-2.0 ns when the row's eight numbers (the cosines and
sines of the four io patterns of a two-qubit input) are loaded once and each lane's entry is
picked from them by one permute instruction. In the whole engine (mnist01, one thread, one process
beside the gathering kernels) the forward pass ran 2.0x faster and forward + gradient 1.5-1.6x
(``benchmarks/engine_ab.py --same-process``). numba has no way
to ask for that instruction, so :func:`pick8` is a numba intrinsic that emits it: AVX-512's
``vpermpd`` for float64, AVX2's ``vpermps`` for float32. Where the target CPU lacks the
instruction it emits LLVM's generic element extraction (correct, but no faster than the gather);
:func:`fast_pick` tells the kernels whether to take this path at all. Either way the picked
numbers are the table's own, so the kernels' results are the same bits on both paths.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic

from qrnn_qiskit.engine.backends.cpu_lanes import WIDTH, Lanes, vector_of

__all__ = ["PICK_WIDTH", "fast_pick", "pick8", "target_features"]

#: entries of a table row that :func:`pick8` picks from: the cosines and sines of 2**I io
#: patterns, so the permute path serves models with a two-qubit input (I = 2)
PICK_WIDTH = WIDTH
_PERMUTES = {types.float64: ("avx512f", "llvm.x86.avx512.permvar.df.512", 64),
             types.float32: ("avx2", "llvm.x86.avx2.permps", 32)}


def target_features() -> set[str]:
    """The CPU features numba compiles for, by numba's own rule: ``NUMBA_CPU_FEATURES`` when set,
    else the host's."""
    features = numba_config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    return {f[1:] for f in features.split(",") if f.startswith("+")}


def fast_pick(num_outcomes: int, dtype) -> bool:
    """Whether the kernels should pick table entries by permute: rows of exactly
    :data:`PICK_WIDTH` entries and a target CPU with the permute for ``dtype``."""
    feature = _PERMUTES[types.float64 if np.dtype(dtype) == np.float64 else types.float32][0]
    return 2 * num_outcomes == PICK_WIDTH and feature in target_features()


def _resize(builder, value, width: ir.IntType):
    """An integer value as ``width`` bits (the indices are below 8, so nothing is lost)."""
    if value.type.width < width.width:
        return builder.zext(value, width)
    return builder.trunc(value, width) if value.type.width > width.width else value


@intrinsic
def pick8(typingctx, row, index):
    """``(row[index[0]], ..., row[index[7]])`` for a row of eight numbers (:class:`Lanes`) and
    eight indices (a tuple, each below 8): one permute instruction where the target has it (see
    the module)."""
    if not (isinstance(row, Lanes) and row.dtype in _PERMUTES
            and isinstance(index, types.UniTuple) and index.count == PICK_WIDTH
            and isinstance(index.dtype, types.Integer)):
        return None
    feature, name, bits = _PERMUTES[row.dtype]

    def codegen(context, builder, signature, args):
        vector, indices = args
        lanes = [builder.extract_value(indices, i) for i in range(PICK_WIDTH)]
        if feature in target_features():
            width = ir.IntType(bits)
            order = vector_of(builder, [_resize(builder, lane, width) for lane in lanes])
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector.type, [vector.type, order.type]), name)
            return builder.call(function, [vector, order])
        return vector_of(builder, [builder.extract_element(vector, lane) for lane in lanes])

    return row(row, index), codegen
