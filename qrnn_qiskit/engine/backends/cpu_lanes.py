"""A block's eight sequences as one value in the compiled CPU kernels: an LLVM vector of eight.

The kernels keep a block of eight sequences side by side, ``psi[w, lane]``
(:mod:`~qrnn_qiskit.engine.backends.cpu_kernels`), and every amplitude-pair update is the same
arithmetic on the eight lanes. :class:`Lanes` is that row of eight as a numba value whose LLVM type
is ``<8 x double>`` (or ``<8 x float>``): :func:`load` reads row ``x`` of an ``(n, 8)`` array,
:func:`store` writes it, and ``+``, ``-`` and ``*`` between two rows, or a row and a number of its
precision, act lane by lane.

Why not the eight lanes written out as eight scalars (as the kernels were): numba then types,
lowers and hands LLVM eight copies of every operation, and LLVM's SLP vectoriser has to find the
vector in them again. Written as vectors, the kernels' code is about an eighth as long where it
matters, and the first compilation in a fresh environment is correspondingly shorter
(``benchmarks/first_use.py``). The arithmetic is the same: a vector ``fmul``/``fadd``/``fsub``
is the scalar IEEE operation in each lane, without contraction into fused multiply-adds (numba sets
no fast-math flags), so every lane's bits are what the scalar code computed, which
``benchmarks/fingerprint.py`` and the engine tests check.

Precision follows numba's scalar rules, spelled out: a row and a number must be of one precision
(a float32 row times a float64 number is a typing error here, where numba would have promoted to
float64), and :func:`widen` makes a float32 row float64 exactly where the scalar code added a
float32 term to a float64 sum.
"""

from __future__ import annotations

import operator

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import lower_builtin
from numba.core.typing.templates import AbstractTemplate, infer_global, signature
from numba.extending import intrinsic, models, register_model

__all__ = ["WIDTH", "Lanes", "element", "keep_where", "load", "pack", "splat", "store", "vector_of", "widen"]

#: lanes in a row: the kernels' block of sequences
WIDTH = 8
_I32 = ir.IntType(32)


class Lanes(types.Type):
    """Eight numbers of one precision (``dtype``: numba's float64 or float32), one a sequence."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Lanes{WIDTH}[{dtype}]")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), WIDTH))


def _is_rows(array) -> bool:
    return (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"
            and isinstance(array.dtype, types.Float))


def _row_pointer(context, builder, array_type, array, index_type, index):
    """A pointer to ``array[index, 0]`` as a pointer to a row of eight."""
    x = context.cast(builder, index, index_type, types.intp)
    struct = context.make_array(array_type)(context, builder, array)
    first = cgutils.get_item_pointer(context, builder, array_type, struct, [x, context.get_constant(types.intp, 0)])
    vector = ir.VectorType(context.get_value_type(array_type.dtype), WIDTH)
    return builder.bitcast(first, vector.as_pointer())


@intrinsic
def load(typingctx, array, x):
    """Row ``x`` of a C-contiguous ``(n, 8)`` float array (the caller sees to the eight columns and
    to ``x`` in range, as for any unchecked numba index)."""
    if not (_is_rows(array) and isinstance(x, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        pointer = _row_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(pointer, align=sig.args[0].dtype.bitwidth // 8)

    return Lanes(array.dtype)(array, x), codegen


@intrinsic
def store(typingctx, array, x, value):
    """Write ``value`` into row ``x`` of a C-contiguous ``(n, 8)`` float array of its precision."""
    if not (_is_rows(array) and isinstance(x, types.Integer) and isinstance(value, Lanes)
            and value.dtype == array.dtype):
        return None

    def codegen(context, builder, sig, args):
        pointer = _row_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], pointer, align=sig.args[0].dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, x, value), codegen


def vector_of(builder, scalars):
    """An LLVM vector of ``scalars`` (LLVM values of one type), for the intrinsics here and in
    :mod:`~qrnn_qiskit.engine.backends.cpu_pick`."""
    vector = ir.Constant(ir.VectorType(scalars[0].type, len(scalars)), ir.Undefined)
    for i, value in enumerate(scalars):
        vector = builder.insert_element(vector, value, ir.Constant(_I32, i))
    return vector


def _splat(builder, value, vector_type):
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), ir.Constant(ir.VectorType(_I32, WIDTH), [0] * WIDTH))


@intrinsic
def splat(typingctx, value):
    """``value`` (a float) in every lane."""
    if not isinstance(value, types.Float):
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], context.get_value_type(sig.return_type))

    return Lanes(value)(value), codegen


@intrinsic
def pack(typingctx, values):
    """A row of eight numbers of one float type (a tuple) as :class:`Lanes`."""
    if not (isinstance(values, types.UniTuple) and values.count == WIDTH and isinstance(values.dtype, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        return vector_of(builder, [builder.extract_value(args[0], i) for i in range(WIDTH)])

    return Lanes(values.dtype)(values), codegen


@intrinsic
def element(typingctx, value, i):
    """Lane ``i`` (0-7) of a row, as a number."""
    if not (isinstance(value, Lanes) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], context.cast(builder, args[1], sig.args[1], types.int32))

    return value.dtype(value, i), codegen


@intrinsic
def widen(typingctx, value):
    """A row in float64: exact (``fpext``) for float32, the row itself for float64."""
    if not isinstance(value, Lanes):
        return None

    def codegen(context, builder, sig, args):
        if sig.args[0].dtype == types.float64:
            return args[0]
        return builder.fpext(args[0], context.get_value_type(sig.return_type))

    return Lanes(types.float64)(value), codegen


@intrinsic
def keep_where(typingctx, index, j, value):
    """``value`` in the lanes whose ``index`` (a tuple of eight integers) equals ``j``, +0.0 in the
    others: the scalar code's ``value if index == j else 0.0`` in every lane, so that adding it
    leaves the other lanes' sums as they were (a sum never becomes -0.0 by adding +0.0)."""
    if not (isinstance(index, types.UniTuple) and index.count == WIDTH and isinstance(index.dtype, types.Integer)
            and isinstance(j, types.Integer) and isinstance(value, Lanes)):
        return None

    def codegen(context, builder, sig, args):
        index_type, j_type = sig.args[0].dtype, sig.args[1]
        wide = types.uint64 if not index_type.signed and not j_type.signed else types.int64
        j_value = context.cast(builder, args[1], j_type, wide)
        entries = [context.cast(builder, builder.extract_value(args[0], i), index_type, wide) for i in range(WIDTH)]
        mask = vector_of(builder, [builder.icmp_unsigned("==", entry, j_value) for entry in entries])
        zero = ir.Constant(args[2].type, [0.0] * WIDTH)
        return builder.select(mask, args[2], zero)

    return value(index, j, value), codegen


def _arithmetic(method: str):
    def lower(context, builder, sig, args):
        vector_type = context.get_value_type(sig.return_type)
        left, right = (value if isinstance(value.type, ir.VectorType) else _splat(builder, value, vector_type)
                       for value in args)
        return getattr(builder, method)(left, right)

    return lower


for _operator, _method in ((operator.add, "fadd"), (operator.sub, "fsub"), (operator.mul, "fmul")):

    @infer_global(_operator)
    class _LanesArithmetic(AbstractTemplate):
        """A row with a row, or a row with a number, all of one precision."""

        def generic(self, args, kws):
            if kws or len(args) != 2 or not any(isinstance(a, Lanes) for a in args):
                return None
            rows = [a for a in args if isinstance(a, Lanes)]
            dtype = rows[0].dtype
            if all(a == rows[0] or a == dtype for a in args):
                return signature(rows[0], *args)
            return None

    for _dtype in (types.float64, types.float32):
        _row = Lanes(_dtype)
        for _types in ((_row, _row), (_row, _dtype), (_dtype, _row)):
            lower_builtin(_operator, *_types)(_arithmetic(_method))
