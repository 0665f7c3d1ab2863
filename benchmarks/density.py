"""The density path's cost beside the pure path's: forward and forward+gradient of one batch.

One JSON line per meaning, all measured in this process side by side, medians of ``--repeats``:

* ``pure-cpu``: the paper's meaning (postselected neurons, teacher forcing) on the compiled CPU kernels;
* ``pure-numpy``: the same on the numpy reference path;
* ``density-teacher``: the same meaning on the density path (the identical numbers: a control);
* ``density-measure``: every step measured, postselected neurons;
* ``density-keep``: every step measured, neurons that keep every shot;
* ``density-noise``: keep neurons, every step measured, fake_torino-like noise as rates;
* ``density-noise-numpy``: the same with the channels applied by numpy broadcasting instead of the
  compiled kernel (the kernel's gain).

The density lines run the compiled channel kernel (engine ``cpu``) unless named ``-numpy``.

Each line gives ``forward_s``, ``forward_backward_s`` (median seconds for ``--batch`` sequences
of ``--steps`` steps, the loss on the last), the same per sequence-step, ``ratio_to_pure_cpu``
of the gradient pass, and the density path's state size (``4**(I+W)`` numbers a sequence). The
default model is I=2, W=3, S=1, order 2, degree 2 (the issue's figure: 100 sequences x 8 steps).

Usage: python benchmarks/density.py [--batch 100] [--steps 8] [--workspace 3] [--repeats 3] [--meanings a,b]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from qrnn_qiskit.core.config import QRNNConfig
from qrnn_qiskit.core.noise import NoiseSpec
from qrnn_qiskit.engine import ExactEngine
from qrnn_qiskit.engine.memory import density_bytes
from qrnn_qiskit.engine.spec import EngineSpec

# per-neuron rates of the order of what noise_from_backend reads off fake_torino for small models
NOISE = NoiseSpec(neuron=0.02, write=0.0005, damping=0.03, dephasing=0.08, readout0=0.023, readout1=0.023)
MEANINGS = {
    "pure-cpu": EngineSpec("cpu"),
    "pure-numpy": EngineSpec("numpy"),
    "density-teacher": None,  # the pure meaning forced onto the density backend
    "density-measure": EngineSpec("cpu", unscored="measure"),
    "density-keep": EngineSpec("cpu", neuron_mode="keep", unscored="measure"),
    "density-noise": EngineSpec("cpu", neuron_mode="keep", unscored="measure", noise=NOISE),
    "density-noise-numpy": EngineSpec("numpy", neuron_mode="keep", unscored="measure", noise=NOISE),
}


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--input-width", type=int, default=2)
    parser.add_argument("--workspace", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--meanings", default=",".join(MEANINGS), help="comma-separated subset of the meanings "
                        "(the ratio needs pure-cpu)")
    args = parser.parse_args(argv)
    cfg = QRNNConfig(input_width=args.input_width, workspace=args.workspace, stages=1, order=2, degree=2)
    params = cfg.initial_parameters(bias_spread=0.5, weights_spread=0.5, unitaries_spread=0.5, seed=1)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, cfg.num_outcomes, (args.batch, args.steps))
    targets = rng.integers(0, cfg.num_outcomes, (args.batch, args.steps))
    scored = np.zeros(args.steps, bool)
    scored[-1] = True
    base = None
    for name, spec in MEANINGS.items():
        if name not in args.meanings.split(","):
            continue
        engine = ExactEngine(cfg, spec if spec is not None else EngineSpec("numpy"))
        if spec is None:
            from qrnn_qiskit.engine.backends.density import DensityBackend

            engine.backend = DensityBackend(engine.plan, engine.neuron_mode)
        engine.loss_and_gradient(params, inputs, targets, scored)  # compile and warm up
        measured = np.full(args.steps, engine.spec.unscored == "measure")
        forward = _median(lambda: engine.simulate(params, inputs, targets, measure=measured if spec is not None
                                                  and spec.mixed else None), args.repeats)
        both = _median(lambda: engine.loss_and_gradient(params, inputs, targets, scored), args.repeats)
        base = both if name == "pure-cpu" else base
        per = args.batch * args.steps
        print(json.dumps({
            "benchmark": "density", "meaning": name, "model": cfg.to_dict(), "batch": args.batch, "steps": args.steps,
            "backend": "density" if spec is None else engine.spec.backend,
            "forward_s": round(forward, 4), "forward_backward_s": round(both, 4),
            "forward_backward_us_per_sequence_step": round(both / per * 1e6, 1),
            "ratio_to_pure_cpu": None if base is None else round(both / base, 2),
            "density_state_numbers_per_sequence": 4 ** cfg.num_lanes,
            "density_state_mib_per_sequence": round(density_bytes(cfg.num_lanes, 1, False) / 2**20, 3),
            "repeats": args.repeats, "machine": platform.machine(), "python": platform.python_version(),
        }), flush=True)


if __name__ == "__main__":
    main()
