"""The row-of-eight value the CPU kernels compute with (``cpu_lanes``), against numpy lane by lane.

Each operation must give, in every lane, the bits of the scalar numba code it replaced: the same
IEEE operation in the same precision, float32 promoted to float64 only where asked.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba.core.errors import TypingError

from qrnn_qiskit.engine.backends.cpu_lanes import WIDTH, element, keep_where, load, pack, splat, store, widen


@numba.njit
def _arithmetic(a, c, out):
    x, y = load(a, 0), load(a, 1)
    store(out, 0, x * y - c * x)
    store(out, 1, c * y + x * c)
    store(out, 2, (x - y) * (y + c))


@numba.njit
def _arithmetic_scalar(a, c, out):
    for i in range(WIDTH):
        x, y = a[0, i], a[1, i]
        out[0, i] = x * y - c * x
        out[1, i] = c * y + x * c
        out[2, i] = (x - y) * (y + c)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_arithmetic_gives_the_scalar_codes_bits_in_every_lane(dtype):
    rng = np.random.default_rng(5)
    for _ in range(10):
        a = rng.normal(size=(2, WIDTH)).astype(dtype)
        c = dtype(rng.normal())
        vector, scalar = np.full((3, WIDTH), np.nan, dtype), np.zeros((3, WIDTH), dtype)
        _arithmetic(a, c, vector)
        _arithmetic_scalar(a, c, scalar)
        np.testing.assert_array_equal(vector, scalar)
        np.testing.assert_array_equal(vector[0], a[0] * a[1] - c * a[0])  # numpy, in the array's precision
        assert vector.dtype == dtype


@numba.njit
def _mixed(rows, total, out):
    start = splat(0.0)
    store(out, 0, start + widen(load(rows, 0) * load(rows, 1)) + 0.5 * load(total, 0))


def test_widen_is_exact_and_float32_products_stay_float32_before_it():
    rng = np.random.default_rng(6)
    rows = rng.normal(size=(2, WIDTH)).astype(np.float32)
    total = rng.normal(size=(1, WIDTH))
    out = np.zeros((1, WIDTH))
    _mixed(rows, total, out)
    expected = 0.0 + (rows[0] * rows[1]).astype(np.float64) + 0.5 * total[0]  # float32 product, then exact
    np.testing.assert_array_equal(out[0], expected)
    assert not np.array_equal(out[0], 0.0 + rows[0].astype(np.float64) * rows[1] + 0.5 * total[0])


@numba.njit
def _keep(index, j, rows, out):
    store(out, 0, load(out, 0) + keep_where(index, j, load(rows, 0)))


def test_keep_where_adds_only_the_matching_lanes_and_leaves_the_others_bits():
    index = (np.uint64(0), np.uint64(3), np.uint64(1), np.uint64(3), np.uint64(2), np.uint64(0), np.uint64(3),
             np.uint64(1))
    rows = np.array([[1.5, -2.0, 3.0, -0.0, np.inf, -1.0, 7.0, 0.25]])
    out = np.array([[0.0, 1.0, -0.0, 2.0, -0.0, 5.0, 0.0, 1.0]])
    before = out.copy()
    _keep(index, 3, rows, out)
    np.testing.assert_array_equal(out[0], [0.0, -1.0, 0.0, 2.0, 0.0, 5.0, 7.0, 1.0])
    # lanes not picked keep their sign of zero as ``x + (t if i == j else 0.0)`` does: -0.0 + 0.0 is +0.0
    assert not np.signbit(out[0, 2]) and not np.signbit(out[0, 4]) and np.signbit(before[0, 4])
    assert np.isfinite(out).all()  # the inf of a lane not picked never reaches the sum


@numba.njit
def _elements(values):
    row = pack((values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7]))
    return [element(row, i) for i in range(WIDTH)]


def test_pack_and_element_round_trip():
    values = np.arange(WIDTH, dtype=np.float64) * 1.25 - 3.0
    assert _elements(values) == list(values)


def test_a_float32_row_and_a_float64_number_do_not_mix():
    @numba.njit
    def mixed(rows, out):
        store(out, 0, load(rows, 0) * 2.0)

    with pytest.raises(TypingError):
        mixed(np.ones((1, WIDTH), np.float32), np.ones((1, WIDTH), np.float32))
