"""The density backend: the device's meaning of the circuits (measured steps, every neuron mode as
its channel, noise), against Aer's density-matrix method on the gate-level circuit, the pure
backends, and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from aer_exact import aer_exact

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.noise import NoiseSpec, parse_noise
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.backends.density import DensityBackend
from qrnn_qiskit.engine.results import reference_loss
from qrnn_qiskit.engine.spec import EngineSpec

NOISE = NoiseSpec(neuron=0.03, write=0.02, damping=0.04, dephasing=0.05, readout0=0.03, readout1=0.06)
MODES = ("postselect", "keep", "amplify:3", "rus:2")


def _case(seed: int) -> dict:
    """A random small configuration: I 1-2, W 1-3, S 0-1, order 1-2, a mode, measured or
    teacher-forced steps, with or without noise (the qubit count kept to what Aer runs quickly)."""
    rng = np.random.default_rng(seed)
    mode = MODES[seed % len(MODES)]
    while True:
        i, w = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        cfg = QRNNConfig(input_width=i, workspace=w, stages=int(rng.integers(0, 2)), order=int(rng.integers(1, 3)),
                         degree=int(rng.integers(1, min(2, i + w - 1) + 1)))
        extra = 3 if mode.startswith("rus") else 1
        if cfg.num_qubits + extra <= (8 if mode.startswith(("rus", "amplify")) else 9):
            break
    return {"cfg": cfg, "mode": mode, "measure": bool(seed // 4 % 2), "noise": NOISE if seed // 8 % 2 == 0 else None,
            "seed": seed}


CASES = [_case(seed) for seed in range(16)] + [  # retries that read misread flags, at order 2
    {"cfg": QRNNConfig(input_width=1, workspace=1, stages=1, order=2, degree=1), "mode": "rus:2", "measure": True,
     "noise": NOISE, "seed": 16},
    {"cfg": QRNNConfig(input_width=1, workspace=2, stages=0, order=2, degree=2), "mode": "rus:1", "measure": False,
     "noise": NOISE, "seed": 17},
]


def _engine(case) -> ExactEngine:
    spec = EngineSpec("numpy", neuron_mode=case["mode"], unscored="measure" if case["measure"] else "postselect",
                      noise=case["noise"])
    return ExactEngine(case["cfg"], spec)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['cfg']}-{c['mode']}-{'measure' if c['measure'] else 'target'}"
                         f"-{'noise' if c['noise'] else 'ideal'}")
def test_equals_aer_density_matrix(case):
    cfg = case["cfg"]
    rng = np.random.default_rng(case["seed"] + 100)
    params = cfg.initial_parameters(bias_spread=0.8, weights_spread=0.8, unitaries_spread=0.8, seed=case["seed"])
    steps = 3
    inputs = rng.integers(0, cfg.num_outcomes, (2, steps))
    targets = rng.integers(0, cfg.num_outcomes, (2, steps))
    expected = aer_exact(cfg, params, inputs, targets, mode=case["mode"], noise=case["noise"], measure=case["measure"])
    engine = _engine(case)
    got = engine.simulate(params, inputs, targets, measure=np.full(steps, case["measure"]))
    np.testing.assert_allclose(got.probabilities, expected["probabilities"], atol=1e-10, rtol=0)
    np.testing.assert_allclose(got.neuron_acceptance, expected["acceptance"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(got.outcome_probability, expected["taken"], rtol=1e-10, atol=0)
    scored = np.array([False, True, True])
    loss = reference_loss(expected["probabilities"], targets, scored, cfg.input_width)[0]
    assert engine.loss(params, inputs, targets, scored) == pytest.approx(loss, abs=1e-10)


def test_cases_cover_every_mode_meaning_and_noise():
    seen = {(c["mode"], c["measure"], c["noise"] is not None) for c in CASES}
    assert {(m, a, b) for m in MODES for a in (False, True) for b in (False, True)} <= seen and any(c["mode"].startswith("rus") and c["cfg"].order == 2 for c in CASES)
    assert {c["cfg"].order for c in CASES} == {1, 2} and {c["cfg"].stages for c in CASES} == {0, 1}
    assert {c["cfg"].input_width for c in CASES} == {1, 2} and {c["cfg"].workspace for c in CASES} >= {1, 2, 3}


@pytest.mark.parametrize("mode", ["postselect", "amplify:3"])
def test_teacher_forced_without_noise_equals_the_pure_path(mode):
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=3)
    rng = np.random.default_rng(1)
    inputs, targets = rng.integers(0, 4, (3, 4)), rng.integers(0, 4, (3, 4))
    scored = np.array([False, True, False, True])
    pure = ExactEngine(cfg, "numpy", neuron_mode=mode)
    dense = ExactEngine(cfg, "numpy", neuron_mode=mode)
    dense.backend = DensityBackend(dense.plan, dense.neuron_mode)
    (l1, g1, r1), (l2, g2, r2) = (e.loss_and_gradient(params, inputs, targets, scored) for e in (pure, dense))
    assert l2 == pytest.approx(l1, abs=1e-14)
    np.testing.assert_allclose(g2, g1, atol=1e-13, rtol=0)
    np.testing.assert_allclose(r2.probabilities, r1.probabilities, atol=1e-14, rtol=0)
    np.testing.assert_allclose(r2.neuron_acceptance, r1.neuron_acceptance, rtol=1e-12)


@pytest.mark.parametrize("mode,measure,noise", [
    ("keep", True, None), ("postselect", True, NOISE), ("rus:1", False, NOISE), ("amplify:3", True, NOISE),
    ("keep", False, NOISE),
])
def test_gradient_equals_finite_differences(mode, measure, noise):
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.6, weights_spread=0.6, unitaries_spread=0.6, seed=5)
    rng = np.random.default_rng(2)
    inputs, targets = rng.integers(0, 2, (2, 4)), rng.integers(0, 2, (2, 4))
    scored = np.array([False, True, True, True])
    engine = ExactEngine(cfg, EngineSpec("numpy", neuron_mode=mode, unscored="measure" if measure else "postselect",
                                         noise=noise))
    assert engine.engine == "density"
    loss, grad, _ = engine.loss_and_gradient(params, inputs, targets, scored)
    h = 1e-5
    fd = np.array([(engine.loss(params + h * e, inputs, targets, scored)
                    - engine.loss(params - h * e, inputs, targets, scored)) / (2 * h) for e in np.eye(params.size)])
    assert np.abs(grad).max() > 1e-3  # a gradient to compare
    np.testing.assert_allclose(grad, fd, atol=2e-9, rtol=0)
    assert loss == pytest.approx(engine.loss(params, inputs, targets, scored), abs=1e-14)


@pytest.mark.parametrize("mode,noise,precision", [
    ("keep", NOISE, "float64"), ("amplify:3", NOISE, "float64"), ("rus:1", None, "float64"), ("keep", NOISE, "float32"),
])
def test_compiled_channels_equal_the_numpy_path(mode, noise, precision):
    """The compiled channel kernel (engine cpu) and numpy broadcasting (engine numpy) compute the
    same loss, gradient and distributions; real arithmetic in the same order gives the same bits."""
    cfg = QRNNConfig(input_width=2, workspace=2, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.6, weights_spread=0.6, unitaries_spread=0.6, seed=3)
    rng = np.random.default_rng(4)
    inputs, targets = rng.integers(0, 4, (11, 4)), rng.integers(0, 4, (11, 4))
    scored = np.array([False, True, False, True])
    runs = [ExactEngine(cfg, EngineSpec(path, precision, mode, "measure", noise)).loss_and_gradient(
        params, inputs, targets, scored) for path in ("numpy", "cpu")]
    assert np.abs(runs[0][1]).max() > 1e-3
    tol = 1e-5 if precision == "float32" else 1e-13
    assert runs[1][0] == pytest.approx(runs[0][0], abs=tol)
    np.testing.assert_allclose(runs[1][1], runs[0][1], atol=tol, rtol=0)
    np.testing.assert_allclose(runs[1][2].probabilities, runs[0][2].probabilities, atol=tol, rtol=0)


def test_float32_follows_float64():
    cfg = QRNNConfig(input_width=1, workspace=3, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.6, weights_spread=0.6, unitaries_spread=0.6, seed=5)
    inputs = np.array([[0, 1, 1, 0, 1]])
    scored = np.array([False, False, False, False, True])
    runs = [ExactEngine(cfg, EngineSpec("cpu", precision, "keep", "measure", NOISE)).loss_and_gradient(
        params, inputs, inputs, scored) for precision in ("float64", "float32")]
    assert runs[1][0] == pytest.approx(runs[0][0], abs=1e-5)
    np.testing.assert_allclose(runs[1][1], runs[0][1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["postselect", "keep"])
def test_measured_steps_are_the_average_over_outcome_histories(mode):
    # two steps, the first measured: each outcome y of the first, teacher-forced, weighted by its
    # probability and by the acceptance of the second step's neurons after it (a filter on the
    # shots: 1 for keep), gives the second step's distribution
    cfg = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=2)
    params = cfg.initial_parameters(bias_spread=0.9, weights_spread=0.9, unitaries_spread=0.9, seed=8)
    inputs = np.array([[1, 0]])
    forced = ExactEngine(cfg, EngineSpec("numpy", neuron_mode=mode))
    first = forced.simulate(params, inputs, np.array([[0, 0]])).probabilities[0, 0]
    runs = [forced.simulate(params, inputs, np.array([[y, 0]])) for y in (0, 1)]
    weights = np.array([first[y] * runs[y].neuron_acceptance[0, 1] for y in (0, 1)])
    mix = sum(w * r.probabilities[0, 1] for w, r in zip(weights, runs)) / weights.sum()
    measured = ExactEngine(cfg, EngineSpec("numpy", neuron_mode=mode, unscored="measure"))
    got = measured.simulate(params, inputs, np.array([[0, 0]]), measure=[True, True])
    np.testing.assert_allclose(got.probabilities[0, 1], mix, atol=1e-14, rtol=0)
    assert got.outcome_probability[0, 0] == 1.0
    assert (mode == "keep") == bool(np.allclose(got.neuron_acceptance, 1.0, atol=1e-14, rtol=0))


def test_depolarizing_everything_gives_the_uniform_distribution():
    cfg = QRNNConfig(input_width=2, workspace=1, stages=0, order=1, degree=1)
    params = cfg.initial_parameters(bias_spread=0.9, weights_spread=0.9, seed=2)
    # neuron=0.75 is not allowed (a rate below 1); 0.999 leaves 1/4000 of the signal per lane
    engine = ExactEngine(cfg, EngineSpec("numpy", neuron_mode="keep", unscored="measure", noise=parse_noise("neuron=0.999")))
    probs = engine.simulate(params, [[1, 2, 3]], [[0, 0, 0]], measure=[True] * 3).probabilities
    np.testing.assert_allclose(probs, 0.25, atol=2e-3)


def test_readout_error_by_hand():
    # I=1, W=1, S=0, order 1, neuron keep: the io lane's true distribution q, read with e0, e1
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    params = cfg.initial_parameters(bias_spread=0.7, weights_spread=0.7, seed=1)
    ideal = ExactEngine(cfg, EngineSpec("numpy", neuron_mode="keep", unscored="measure"))
    noisy = ExactEngine(cfg, EngineSpec("numpy", neuron_mode="keep", unscored="measure",
                                        noise=NoiseSpec(readout0=0.1, readout1=0.2)))
    q = ideal.simulate(params, [[1]], [[0]], measure=[True]).probabilities[0, 0]
    p = noisy.simulate(params, [[1]], [[0]], measure=[True]).probabilities[0, 0]
    # the ancilla's readout error changes nothing in keep mode (its flag is not read)
    np.testing.assert_allclose(p, [0.9 * q[0] + 0.2 * q[1], 0.1 * q[0] + 0.8 * q[1]], atol=1e-15, rtol=0)


def test_memory_is_refused_with_its_figure_before_allocating(monkeypatch):
    """4 sequences of 4**13 numbers, 3 copies a step: 4 * 67M * 8 B * 3 = 6.0 GiB, refused under a
    1 GiB limit before anything is allocated."""
    monkeypatch.setenv("QRNN_MEMORY_LIMIT", "1G")
    cfg = QRNNConfig(input_width=2, workspace=11, stages=1, order=1, degree=1)
    engine = ExactEngine(cfg, EngineSpec("numpy", unscored="measure"))
    params = cfg.initial_parameters(seed=1)
    with pytest.raises(QRNNError, match=r"needs about 6\.\d GiB \(states 6\.0 GiB\) for 4 sequence\(s\) of 1 steps on "
                                        r"I\+W = 13 lanes, more than the 1\.0 GiB allowed"):
        engine.simulate(params, np.zeros((4, 2), int), np.zeros((4, 2), int), measure=[True, True])


def test_spec_resolves_mixed_meanings_to_the_density_path():
    assert EngineSpec("cpu", unscored="measure").backend == "density"
    assert EngineSpec("cpu", noise="readout=0.01").backend == "density"
    assert EngineSpec("cpu", neuron_mode="keep").backend == "density"
    assert EngineSpec("cpu", noise="none").backend == "cpu"
    assert "mixed states" in EngineSpec("gpu", unscored="measure").note
    cfg = QRNNConfig(input_width=1, workspace=1, stages=0, order=1, degree=1)
    with pytest.raises(ValueError, match="mixed-state meaning.*unscored='measure'"):
        ExactEngine(cfg).simulate(cfg.initial_parameters(seed=1), [[0, 1]], [[1, 0]], measure=[True, False])


@pytest.mark.parametrize("text,message", [
    ("neuron=2", r"noise neuron must lie in \[0, 1\), got 2.0"),
    ("readout=0.6", r"noise readout0 must lie in \[0, 0.5\)"),
    ("depol=0.1", "noise rates look like neuron=0.01"),
    ("neuron", "noise rates look like"),
])
def test_bad_noise_rates_say_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_noise(text)
