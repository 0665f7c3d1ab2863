"""Synthesis strategies for a neuron's parameter block.

The block ``P`` rotates ancilla ``a0`` by ``RY(Theta(x))`` for source pattern ``x``, with
``Theta(x) = bias + theta + sum_S phi_S prod_{i in S} x_i`` over the subsets ``S`` of at most
``degree`` sources. It is one uniformly controlled RY. Writing ``x_i = (1 - (-1)**x_i) / 2``
expands the angle over parities (its Walsh spectrum), which is linear in the weights::

    Theta(x) = sum_U c_U (-1)**(x . U)
    c_{}   = bias + theta + sum_S 2**-|S| phi_S
    c_U    = (-1)**|U| sum_{S >= U} 2**-|S| phi_S        (U non-empty, |U| <= degree)

Strategies (:data:`STRATEGIES`):

``mc``
    ``RY(bias + theta)`` and one multi-controlled ``RY(phi_S)`` per subset (the reference's
    construction, one gate per weight).
``multiplexer``
    The uniformly controlled RY as a Gray-code chain: ``2**n`` CNOTs from the sources onto ``a0``
    with ``RY(c_g)`` between them, ``g`` running through the Gray code (terms of degree above
    ``degree`` have ``c_g = 0`` and no rotation, but keep their CNOT).
``phase-polynomial``
    ``RY(a) = C RZ(a) C^dagger`` with the Clifford ``C = S H`` on ``a0`` turns the block into a
    multiplexed RZ: the diagonal ``exp(-i/2 sum_U c_U (-1)**(x.U xor z))``, a phase polynomial
    whose terms are the parities ``U + {a0}``. Its CNOT network comes from GraySynth (Amy,
    Azimzadeh and Mosca, ``qiskit.synthesis.synth_cnot_phase_aam``); it depends only on which
    terms exist, so it is computed once per ``(sources, degree)`` and the ``RZ(c_U)`` angles are
    the weight expressions above: the circuit stays symbolic. The inverse block is the network
    reversed with negated angles. (GraySynth's networks begin and end with gates on ``a0`` for
    the paper's shapes, so no source-only CNOTs commute through the neighbouring ``cry`` to
    cancel; the transpiler finds a few at optimisation level 2.)
``ucgate``
    The whole block as one ``UCGate`` (Qiskit's uniformly controlled gate) built from the
    numeric angle of every source pattern: numeric weights only; Aer simulates it natively.
``diagonal``
    The multiplexed RZ of ``phase-polynomial`` as one numeric ``DiagonalGate`` between
    ``S^dagger H`` and ``H S`` on ``a0``: numeric weights only; Aer simulates it natively and
    stores one vector of ``2**(n+1)`` phases per operation instead of ``2**n`` matrices, which
    is what lets a whole amplified mnist01 sequence fit in memory.
``auto``
    The symbolic strategy (:data:`SYMBOLIC_STRATEGIES`) with the fewest CNOTs for each neuron
    shape (ties: the order above).

Every strategy applies the same unitary, with no global phase difference.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate, Parameter, ParameterExpression
from qiskit.circuit.library import CRYGate, CXGate, DiagonalGate, HGate, RYGate, RZGate, SdgGate, SGate, UCGate
from qiskit.synthesis import synth_cnot_phase_aam

__all__ = [
    "STRATEGIES",
    "SYMBOLIC_STRATEGIES",
    "parity_terms",
    "walsh_coefficients",
    "phase_polynomial_network",
    "strategy_cnot_counts",
    "choose_strategy",
]

STRATEGIES = ("mc", "multiplexer", "phase-polynomial", "ucgate", "diagonal", "auto")
# the strategies that keep weights symbolic, compared by ``auto`` and by ``qrnn build``
SYMBOLIC_STRATEGIES = ("mc", "multiplexer", "phase-polynomial")

ParameterLike = ParameterExpression | float


def parity_terms(num_sources: int, degree: int) -> tuple[tuple[int, ...], ...]:
    """The parity terms of a block: the empty set, then subsets by size in combinations order."""
    terms: list[tuple[int, ...]] = [()]
    for size in range(1, degree + 1):
        terms.extend(itertools.combinations(range(num_sources), size))
    return tuple(terms)


def walsh_coefficients(subsets: Sequence[Sequence[int]], terms: Sequence[Sequence[int]]) -> np.ndarray:
    """Matrix ``M`` with ``c = M @ [theta + bias, phi_0, phi_1, ...]`` for every term.

    ``subsets`` are the weight subsets (in weight order), ``terms`` the parity terms, both as
    tuples of source positions.
    """
    matrix = np.zeros((len(terms), len(subsets) + 1))
    index = {tuple(sorted(t)): j for j, t in enumerate(terms)}
    matrix[index[()], 0] = 1.0
    for w, subset in enumerate(subsets):
        subset = tuple(sorted(subset))
        scale = 2.0 ** -len(subset)
        for size in range(len(subset) + 1):
            for part in itertools.combinations(subset, size):
                j = index.get(part)
                if j is None:
                    raise ValueError(f"Term {part} of subset {subset} is missing from the terms.")
                matrix[j, w + 1] += (-1) ** size * scale
    return matrix


def _linear(coefficients: np.ndarray, values: Sequence[ParameterLike]) -> ParameterLike:
    """``sum_i coefficients[i] * values[i]`` with exact zero coefficients skipped."""
    constant = 0.0
    symbolic: ParameterExpression | None = None
    for coefficient, value in zip(coefficients, values):
        if coefficient == 0.0:
            continue
        term = value if coefficient == 1.0 else (-value if coefficient == -1.0 else float(coefficient) * value)
        if isinstance(term, ParameterExpression):
            symbolic = term if symbolic is None else symbolic + term
        else:
            constant += float(term)
    if symbolic is None:
        return constant
    return symbolic + constant if constant else symbolic


def _ry_controlled(angle: ParameterLike, num_controls: int) -> Gate:
    """``RY(angle)`` with ``num_controls`` controls (plain RY and CRY for 0 and 1)."""
    if num_controls == 0:
        return RYGate(angle)
    if num_controls == 1:
        return CRYGate(angle)
    return RYGate(angle).control(num_controls, annotated=False)


def _pattern_angles(subsets, weights, theta, bias, sources, strategy: str) -> np.ndarray:
    """``bias + theta + sum_S phi_S x_S`` for every source pattern ``x`` (bit ``j`` = source ``j``)."""
    values = [theta, *weights]
    if any(isinstance(v, ParameterExpression) for v in values):
        raise ValueError(f"The {strategy} synthesis (one numeric gate per block, for Aer) needs numeric weights; "
                         "bind the weights or use another synthesis.")
    sources = tuple(sources)
    position = {lane: j for j, lane in enumerate(sources)}
    patterns = np.arange(1 << len(sources))
    angles = np.full(patterns.shape, float(bias) + float(theta))
    for subset, weight in zip(subsets, weights):
        mask = sum(1 << position[lane] for lane in subset)
        angles[(patterns & mask) == mask] += float(weight)
    return angles


def _ucgate_block(subsets, weights, theta, bias, sources) -> tuple[Gate, tuple[int, ...]]:
    """The whole parameter block as one uniformly controlled RY (numeric weights only), returned
    as ``(gate, controls)`` with the gate acting on ``[a0, *controls]`` (``UCGate`` order)."""
    angles = _pattern_angles(subsets, weights, theta, bias, sources, "ucgate")
    half_c, half_s = np.cos(angles / 2), np.sin(angles / 2)
    matrices = [np.array([[c, -s], [s, c]]) for c, s in zip(half_c, half_s)]
    # mux_simp=False: Qiskit's default search for repeated matrices (a zero weight repeats every
    # matrix) shortens the list but keeps the qubit count, which Aer's multiplexer then refuses
    return UCGate(matrices, up_to_diagonal=False, mux_simp=False), tuple(sources)


def _diagonal_block(subsets, weights, theta, bias, sources) -> list[tuple[Gate, tuple]]:
    """``RY(Theta(x))`` on ``a0`` as ``(S H) diag(e^{-+i Theta(x)/2}) (S H)^dagger``: the gate list
    (circuit order) with ``None`` for ``a0``; the diagonal's index is ``a0 + 2 x``."""
    angles = _pattern_angles(subsets, weights, theta, bias, sources, "diagonal")
    phases = np.stack([np.exp(-0.5j * angles), np.exp(0.5j * angles)], axis=1).reshape(-1)
    diagonal = DiagonalGate(phases.tolist())
    return [(SdgGate(), (None,)), (HGate(), (None,)), (diagonal, (None, *sources)), (HGate(), (None,)),
            (SGate(), (None,))]


def _is_zero(value: ParameterLike) -> bool:
    return not isinstance(value, ParameterExpression) and value == 0.0


@functools.lru_cache(maxsize=None)
def phase_polynomial_network(num_sources: int, degree: int) -> tuple[tuple, ...]:
    """GraySynth network for the terms ``U + {a0}``, ``|U| <= degree``, on ``[a0, src...]``.

    Returns operations ``("cx", control, target)`` and ``("rz", term, qubit)`` with local qubit
    ``0`` = ``a0`` and ``j + 1`` = source ``j``; ``term`` indexes :func:`parity_terms`.
    """
    terms = parity_terms(num_sources, degree)
    cnots = [[0] * len(terms) for _ in range(num_sources + 1)]
    for j, term in enumerate(terms):
        cnots[0][j] = 1
        for i in term:
            cnots[i + 1][j] = 1
    # distinct small placeholder angles (GraySynth reduces angles modulo 2 pi) identify each
    # term's phase gate in the synthesised circuit
    step = 1.0 / (len(terms) + 1)
    placeholders = [step * (j + 1) for j in range(len(terms))]
    circuit = synth_cnot_phase_aam(cnots, placeholders, section_size=2)
    index = {q: i for i, q in enumerate(circuit.qubits)}
    ops: list[tuple] = []
    seen: set[int] = set()
    for inst in circuit.data:
        name = inst.operation.name
        qubits = [index[q] for q in inst.qubits]
        if name == "cx":
            ops.append(("cx", qubits[0], qubits[1]))
        elif name == "p":
            term = int(round(float(inst.operation.params[0]) / step)) - 1
            if term in seen or not 0 <= term < len(terms):  # pragma: no cover - synthesis contract
                raise AssertionError(f"GraySynth returned an unexpected phase {inst.operation.params[0]}")
            seen.add(term)
            ops.append(("rz", term, qubits[0]))
        else:  # pragma: no cover - synthesis contract
            raise AssertionError(f"GraySynth returned an unexpected gate {name}")
    if len(seen) != len(terms):  # pragma: no cover - synthesis contract
        raise AssertionError("GraySynth dropped a parity term")
    return tuple(ops)


def _gray_sequence(num_sources: int) -> tuple[list[tuple[int, ...]], list[int]]:
    """Gray-code parities ``g_0 .. g_{2^n - 1}`` and the source whose CNOT follows each one."""
    codes = [i ^ (i >> 1) for i in range(1 << num_sources)]
    parities = [tuple(j for j in range(num_sources) if code >> j & 1) for code in codes]
    flips = []
    for i, code in enumerate(codes):
        following = codes[(i + 1) % len(codes)]
        flips.append((code ^ following).bit_length() - 1)
    return parities, flips


def _cx_count_mc(subsets: Sequence[Sequence[int]]) -> int:
    return sum(_mcry_cx(len(s)) for s in subsets)


@functools.lru_cache(maxsize=None)
def _mcry_cx(num_controls: int) -> int:
    """CNOTs of a ``num_controls``-controlled RY after transpiling to the generic basis."""
    circuit = QuantumCircuit(num_controls + 1)
    circuit.append(_ry_controlled(Parameter("a"), num_controls), range(num_controls + 1))
    compiled = transpile(circuit, basis_gates=["cx", "rz", "sx", "x"], optimization_level=1)
    return compiled.count_ops().get("cx", 0)


def strategy_cnot_counts(num_sources: int, degree: int) -> dict[str, int]:
    """CNOTs of one parameter block for each symbolic strategy (before any transpiler merging)."""
    subsets = parity_terms(num_sources, degree)[1:]
    return {
        "mc": _cx_count_mc(subsets),
        "multiplexer": 1 << num_sources,
        "phase-polynomial": sum(1 for op in phase_polynomial_network(num_sources, degree) if op[0] == "cx"),
    }


def choose_strategy(strategy: str, num_sources: int, degree: int) -> str:
    """Resolve ``auto`` to the strategy with the fewest CNOTs; check the name otherwise."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown block synthesis {strategy!r}; expected one of {', '.join(STRATEGIES)}.")
    if strategy != "auto":
        return strategy
    counts = strategy_cnot_counts(num_sources, degree)
    return min(counts, key=lambda name: (counts[name], list(counts).index(name)))


def synthesize_block(
    strategy: str,
    subsets: Sequence[Sequence[int]],
    weights: Sequence[ParameterLike],
    theta: ParameterLike,
    bias: float,
    sources: Sequence[int],
) -> tuple[list[tuple[Gate, tuple]], list[tuple[Gate, tuple]] | None]:
    """The block and its inverse as ``(gate, qubit references)`` lists.

    A reference is a source lane (an element of ``sources``) or ``None`` for ``a0``. The inverse
    is ``None`` where it is the block conjugated by X on ``a0``.
    """
    sources = tuple(sources)
    position = {lane: j for j, lane in enumerate(sources)}
    local_subsets = [tuple(position[lane] for lane in subset) for subset in subsets]
    values = [theta + bias, *weights]

    def ref(local: int):
        return None if local == 0 else sources[local - 1]

    if strategy == "mc":
        block = [(RYGate(theta + bias), (None,))]
        block += [(_ry_controlled(w, len(s)), (*s, None)) for s, w in zip(subsets, weights)]
        return block, None
    if strategy == "multiplexer":
        parities, flips = _gray_sequence(len(sources))
        matrix = walsh_coefficients(local_subsets, parities)
        block = []
        for row, flip in zip(matrix, flips):
            angle = _linear(row, values)
            if not _is_zero(angle):
                block.append((RYGate(angle), (None,)))
            block.append((CXGate(), (sources[flip], None)))
        return block, None
    if strategy == "phase-polynomial":
        degree = max((len(s) for s in subsets), default=1)
        terms = parity_terms(len(sources), degree)
        matrix = walsh_coefficients(local_subsets, terms)
        angles = [_linear(row, values) for row in matrix]
        network = phase_polynomial_network(len(sources), degree)
        into, out_of = [(SdgGate(), (None,)), (HGate(), (None,))], [(HGate(), (None,)), (SGate(), (None,))]
        forward, backward = [], []
        for op in network:
            if op[0] == "cx":
                entry = (CXGate(), (ref(op[1]), ref(op[2])))
                forward.append(entry)
                backward.append(entry)
            elif not _is_zero(angles[op[1]]):
                forward.append((RZGate(angles[op[1]]), (ref(op[2]),)))
                backward.append((RZGate(-angles[op[1]]), (ref(op[2]),)))
        backward.reverse()
        return into + forward + out_of, into + backward + out_of
    if strategy == "ucgate":
        gate, controls = _ucgate_block(subsets, weights, theta, bias, sources)
        return [(gate, (None, *controls))], None
    if strategy == "diagonal":
        return _diagonal_block(subsets, weights, theta, bias, sources), None
    raise ValueError(f"Unknown block synthesis {strategy!r}; expected one of {', '.join(STRATEGIES)}.")

