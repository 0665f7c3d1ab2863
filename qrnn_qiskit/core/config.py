"""Model configuration, lane order and parameter layout of the QRNN (Bausch, NeurIPS 2020).

Lanes and qubits
----------------
A cell acts on ``I + W`` *lanes* plus ``order`` neuron ancillas:

* lanes ``0 .. I-1`` are the **io** lanes (input written, output measured);
* lanes ``I .. I+W-1`` are the **workspace** (the recurrent cell state);
* the gate-level circuit adds the ancillas ``a0 .. a_{order-1}`` after them.

Qubit ``q`` of every circuit built here is lane ``q`` (ancillas follow), so Qiskit's
little-endian statevector index has bit ``q`` equal to lane ``q``.

Tokens
------
A token is an integer in ``[0, 2**I)``. As in the reference implementation, io lane 0 holds the
**most significant** bit: lane ``i`` carries bit ``(token >> (I-1-i)) & 1``. Distributions over
io outcomes returned by this package are indexed by token value.

Parameter layout (the reference implementation's)
-------------------------------------------------
Neurons in cell order: the input stage (one neuron per workspace lane, ascending), then for each
work stage ``s`` one neuron per workspace lane, then the output stage (one neuron per io lane).
A neuron targeting lane ``t`` reads the *source* lanes: the workspace lanes ascending, then the
io lanes ascending, with ``t`` removed. Its weights are one angle ``phi_S`` per subset ``S`` of the
sources with ``1 <= |S| <= degree``, in :func:`itertools.combinations` order (all singletons,
then all pairs, ...), followed by its bias ``theta``. The flat parameter vector is::

    [neuron 0: phi_0 .. phi_{D-1}, theta] [neuron 1: ...] ... [RY angles of work stage 0, lane
    order] ... [RY angles of work stage S-1]

so ``P = (W + S*W + I) * (1 + D) + S*W`` with ``D = sum_{j=1..d} C(W+I-1, j)``.

Neuron angle
------------
Ancilla ``a0`` is rotated by ``RY(Theta(x))`` with
``Theta(x) = bias + theta + sum_S phi_S prod_{i in S} x_i``, where ``bias`` is the fixed,
untrained offset (``pi/2`` by default; the reference's ``--initial-bias``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = ["QRNNConfig", "NeuronSpec", "Stage", "check_parameters", "check_tokens", "num_neuron_weights",
           "num_parameters"]

_MAX_LANES = 24
#: work stages and neuron order beyond any QRNN of the paper by far (it uses S <= 4, k <= 3); a
#: k-th order neuron's activation is tan**(2**k), which overflows a float long before k = 16
_MAX_STAGES = 256
_MAX_ORDER = 16


def num_neuron_weights(num_sources: int, degree: int) -> int:
    """Number of subset weights ``D = sum_{j=1..degree} C(num_sources, j)`` of one neuron."""
    return sum(math.comb(num_sources, j) for j in range(1, degree + 1))


def num_parameters(input_width: int, workspace: int, stages: int, degree: int) -> int:
    """Parameter count ``P = (W + S*W + I)(1 + D) + S*W`` without building anything."""
    d = num_neuron_weights(workspace + input_width - 1, degree)
    return (workspace + stages * workspace + input_width) * (1 + d) + stages * workspace


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}.")
    return int(value)


def check_parameters(parameters: object, count: int, model: object) -> np.ndarray:
    """``parameters`` as a float64 vector of length ``count`` (``model`` names it in errors).

    Raises:
        TypeError: for something that is not numbers. ValueError: if the length is wrong or an
            entry is not finite.
    """
    try:
        values = np.asarray(parameters, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"parameters must be a sequence of {count} real numbers."
        ) from exc
    if values.ndim != 1 or values.shape[0] != count:
        raise ValueError(
            f"Expected a flat parameter vector of length {count} for {model}, "
            f"got shape {values.shape}."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("parameters contain NaN or infinite entries.")
    return values


def check_tokens(tokens: object, input_width: int, name: str = "tokens") -> np.ndarray:
    """``tokens`` as an int64 array, each an integer in ``[0, 2**input_width)``.

    Raises:
        ValueError: if a token is not an integer in range.
    """
    array = np.asarray(tokens)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must be integers in [0, {2**input_width}) (input_width="
            f"{input_width}), got dtype {array.dtype}."
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{name} must be whole numbers, got non-integer values.")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= 2**input_width):
        raise ValueError(
            f"{name} must lie in [0, {2**input_width}) for input_width={input_width}, "
            f"got values in [{array.min()}, {array.max()}]."
        )
    return array


@dataclass(frozen=True)
class Stage:
    """A stage of the cell: ``kind`` is ``"input"``, ``"work"`` or ``"output"``; ``index`` is the
    work stage's number (``None`` for the others). ``str(stage)`` is ``input``, ``work0``, ... ``output``."""

    kind: str
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("input", "work", "output"):
            raise ValueError(f"Unknown stage kind {self.kind!r}; expected input, work or output.")
        if (self.kind == "work") != (self.index is not None):
            raise ValueError(f"A work stage needs its index and only a work stage has one, got {self.kind}, {self.index}.")

    @property
    def is_work(self) -> bool:
        return self.kind == "work"

    def __str__(self) -> str:
        return f"work{self.index}" if self.is_work else self.kind


@dataclass(frozen=True)
class NeuronSpec:
    """One neuron of the cell: where it sits, which lanes it reads and its parameter slice.

    Attributes:
        index: position in cell order (0-based).
        stage: the :class:`Stage` it belongs to (input, work ``s`` or output).
        target: the lane the neuron rotates.
        sources: the lanes it reads, in the reference order (workspace, then io; target removed).
        subsets: one tuple of lanes per weight, in weight order.
        offset: index of the neuron's first weight in the flat parameter vector; its bias
            ``theta`` sits at ``offset + len(subsets)``.
    """

    index: int
    stage: Stage
    target: int
    sources: tuple[int, ...]
    subsets: tuple[tuple[int, ...], ...]
    offset: int

    @property
    def num_weights(self) -> int:
        """Number of subset weights ``D``."""
        return len(self.subsets)

    @property
    def bias_index(self) -> int:
        """Index of this neuron's trainable bias ``theta`` in the flat parameter vector."""
        return self.offset + len(self.subsets)

    @property
    def weight_slice(self) -> slice:
        """Slice of the subset weights ``phi`` in the flat parameter vector."""
        return slice(self.offset, self.offset + len(self.subsets))


@dataclass(frozen=True)
class QRNNConfig:
    """Hyperparameters of a QRNN cell.

    Args:
        input_width: ``I``, the number of io lanes (bits per token).
        workspace: ``W``, the number of workspace lanes (the cell state).
        stages: ``S``, the number of work stages (each: RY on every workspace lane, then W neurons).
        order: ``k``, the neuron order (nesting depth; ``k`` ancillas, ``2**k - 1`` measurements).
        degree: ``d``, the maximum size of the source subsets that carry a weight.
        bias: the fixed, untrained offset added to every neuron's ancilla angle (``pi/2``).

    Raises:
        ValueError: for non-positive sizes, a degree larger than the number of sources, or a model
            too wide to simulate.
        TypeError: for non-integer sizes or a non-real bias.
    """

    input_width: int
    workspace: int
    stages: int = 2
    order: int = 2
    degree: int = 2
    bias: float = field(default=math.pi / 2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_width", _check_int("input_width", self.input_width, 1))
        object.__setattr__(self, "workspace", _check_int("workspace", self.workspace, 1))
        object.__setattr__(self, "stages", _check_int("stages", self.stages, 0, _MAX_STAGES))
        object.__setattr__(self, "order", _check_int("order", self.order, 1, _MAX_ORDER))
        object.__setattr__(self, "degree", _check_int("degree", self.degree, 1))
        if isinstance(self.bias, bool) or not isinstance(self.bias, (int, float, np.floating)):
            raise TypeError(f"bias must be a real number, got {type(self.bias).__name__}.")
        if not math.isfinite(float(self.bias)):
            raise ValueError(f"bias must be finite, got {self.bias}.")
        object.__setattr__(self, "bias", float(self.bias))
        if self.degree > self.num_sources:
            raise ValueError(
                f"degree must be at most the number of source lanes per neuron "
                f"(input_width + workspace - 1 = {self.num_sources}), got degree={self.degree}."
            )
        if self.num_lanes > _MAX_LANES:
            raise ValueError(
                f"input_width + workspace must be at most {_MAX_LANES} to simulate, "
                f"got {self.num_lanes}."
            )

    # ----------------------------------------------------------------------------- sizes
    @property
    def num_lanes(self) -> int:
        """``I + W``: io and workspace lanes (the exact engine's qubits)."""
        return self.input_width + self.workspace

    @property
    def num_qubits(self) -> int:
        """``I + W + order``: the qubits of the gate-level circuit."""
        return self.num_lanes + self.order

    @property
    def num_sources(self) -> int:
        """Source lanes read by every neuron: ``I + W - 1``."""
        return self.num_lanes - 1

    @property
    def num_neuron_weights(self) -> int:
        """``D``, the subset weights per neuron (bias not counted)."""
        return num_neuron_weights(self.num_sources, self.degree)

    @property
    def num_neurons(self) -> int:
        """Neurons per cell step: ``W + S*W + I``."""
        return self.workspace * (1 + self.stages) + self.input_width

    @property
    def num_parameters(self) -> int:
        """Length of the flat parameter vector."""
        return self.num_neurons * (1 + self.num_neuron_weights) + self.stages * self.workspace

    @property
    def num_outcomes(self) -> int:
        """``2**I`` possible tokens."""
        return 1 << self.input_width

    @property
    def io_lanes(self) -> tuple[int, ...]:
        return tuple(range(self.input_width))

    @property
    def workspace_lanes(self) -> tuple[int, ...]:
        return tuple(range(self.input_width, self.num_lanes))

    @property
    def unitary_offset(self) -> int:
        """Index of the first work-stage RY angle in the flat parameter vector."""
        return self.num_neurons * (1 + self.num_neuron_weights)

    def unitary_index(self, stage: int, lane: int) -> int:
        """Index of the RY angle of work stage ``stage`` on workspace lane ``lane``."""
        if not 0 <= stage < self.stages:
            raise ValueError(f"stage must be in [0, {self.stages}), got {stage}.")
        if lane not in self.workspace_lanes:
            raise ValueError(f"lane must be a workspace lane {self.workspace_lanes}, got {lane}.")
        return self.unitary_offset + stage * self.workspace + (lane - self.input_width)

    # ----------------------------------------------------------------------------- layout
    def neuron_sources(self, target: int) -> tuple[int, ...]:
        """Source lanes of a neuron on ``target``: workspace ascending, then io, target removed."""
        order = self.workspace_lanes + self.io_lanes
        return tuple(lane for lane in order if lane != target)

    @cached_property
    def neurons(self) -> tuple[NeuronSpec, ...]:
        """Every neuron of one cell step, in cell (and parameter) order."""
        stages = [(Stage("input"), self.workspace_lanes)]
        stages += [(Stage("work", s), self.workspace_lanes) for s in range(self.stages)]
        stages.append((Stage("output"), self.io_lanes))
        specs = []
        per_neuron = 1 + self.num_neuron_weights
        for stage, targets in stages:
            for target in targets:
                sources = self.neuron_sources(target)
                subsets = tuple(
                    itertools.chain.from_iterable(
                        itertools.combinations(sources, r) for r in range(1, self.degree + 1)
                    )
                )
                specs.append(
                    NeuronSpec(
                        index=len(specs),
                        stage=stage,
                        target=target,
                        sources=sources,
                        subsets=subsets,
                        offset=len(specs) * per_neuron,
                    )
                )
        return tuple(specs)

    # ----------------------------------------------------------------------------- values
    def validate_parameters(self, parameters: object) -> np.ndarray:
        """Return ``parameters`` as a float64 vector of length :attr:`num_parameters`.

        Raises:
            ValueError: if the length is wrong or an entry is not finite.
        """
        return check_parameters(parameters, self.num_parameters, self)

    def initial_parameters(
        self,
        *,
        bias_spread: float = 0.1,
        weights_spread: float = 0.01,
        unitaries_spread: float = 0.01,
        seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Random parameters as the reference initialises them.

        Each bias ``theta ~ N(0, bias_spread)``, each subset weight ``phi ~ N(0, weights_spread)``,
        each work-stage angle ``~ N(0, unitaries_spread)``; a spread below 1e-10 gives zeros.
        """
        rng = np.random.default_rng(seed)
        values = np.zeros(self.num_parameters)
        for name, spread in (
            ("bias_spread", bias_spread),
            ("weights_spread", weights_spread),
            ("unitaries_spread", unitaries_spread),
        ):
            if not (isinstance(spread, (int, float)) and math.isfinite(spread) and spread >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {spread!r}.")

        def draw(spread: float, size: int) -> np.ndarray:
            return rng.normal(0.0, spread, size) if spread >= 1e-10 else np.zeros(size)

        for spec in self.neurons:
            values[spec.weight_slice] = draw(weights_spread, spec.num_weights)
            values[spec.bias_index] = draw(bias_spread, 1)[0]
        values[self.unitary_offset :] = draw(unitaries_spread, self.stages * self.workspace)
        return values

    # ----------------------------------------------------------------------------- tokens
    def token_to_bits(self, tokens: object) -> np.ndarray:
        """Bits per io lane (lane 0 = most significant bit) of integer tokens, shape ``(..., I)``."""
        array = self.validate_tokens(tokens, "tokens")
        shifts = np.arange(self.input_width - 1, -1, -1)
        return (array[..., None] >> shifts) & 1

    def validate_tokens(self, tokens: object, name: str = "tokens") -> np.ndarray:
        """Return ``tokens`` as an int64 array, each in ``[0, 2**I)``.

        Raises:
            ValueError: if a token is not an integer in range.
        """
        return check_tokens(tokens, self.input_width, name)

    def to_dict(self) -> dict[str, int | float]:
        return {
            "input_width": self.input_width,
            "workspace": self.workspace,
            "stages": self.stages,
            "order": self.order,
            "degree": self.degree,
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, data: dict) -> QRNNConfig:
        """Build a config from :meth:`to_dict` output, rejecting unknown or missing keys."""
        if not isinstance(data, dict):
            raise ValueError(f"A model configuration must be a mapping, got {type(data).__name__}.")
        known = {"input_width", "workspace", "stages", "order", "degree", "bias"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown model configuration keys {unknown}; expected a subset of {sorted(known)}."
            )
        missing = sorted({"input_width", "workspace"} - set(data))
        if missing:
            raise ValueError(f"Model configuration is missing required keys {missing}.")
        return cls(**data)
