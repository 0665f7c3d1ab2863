"""What the reference mnist01 model computes when its neurons are amplified; prints JSON lines.

For the reference checkpoint on the mnist01 test split (all 2,115 images unless ``--limit``):
test accuracy (sampled, as the reference scores), expected accuracy, and the expected acceptance
of the whole 99-step circuit under

  (a) postselected neurons, postselected don't-care steps (the reference's evaluation);
  (b) ``amplify:L`` neurons, postselected don't-care steps;
  (c) ``amplify:L`` neurons, measured don't-care steps (what hardware can run);

and with ``--gates`` the 2-qubit gates of one cell step on the generic basis and on fake
backends for each mode. ``--checkpoint`` may also be a run's checkpoint (e.g. one fine-tuned
under amplified semantics) to score it the same way.

Usage: python benchmarks/amplify_study.py [--uses 3,5,7] [--limit N] [--gates] [--targets generic,fake_torino]
The default checkpoint and data are those of ``../shared`` (skipped cleanly without them).
"""

from __future__ import annotations

import argparse
import json
import time

from _shared import add_model_options, load_model_or_skip

from qrnn_qiskit.data.registry import get_dataset
from qrnn_qiskit.evaluation.exact import evaluate_exact

KEYS = ("accuracy", "expected_accuracy", "log10_expected_acceptance", "log10_acceptance_median", "loss")


def _accuracy_rows(config, params, dataset, uses, args):
    cases = [("postselect", "postselect")]
    cases += [(f"amplify:{u}", unscored) for u in uses for unscored in ("postselect", "measure")]
    batch = dataset.split("test").first(args.limit) if args.limit else None
    for mode, unscored in cases:
        start = time.perf_counter()
        figures = evaluate_exact(config, params, dataset, batch=batch, seed=0, neuron_mode=mode, unscored=unscored,
                                 trajectories=args.trajectories)
        yield {"benchmark": "amplify_study", "checkpoint": args.checkpoint, "neuron_mode": mode, "unscored": unscored,
               "sequences": figures["sequences"], **{k: figures[k] for k in KEYS},
               **({"trajectories": args.trajectories} if unscored == "measure" else {}),
               "seconds": round(time.perf_counter() - start, 1)}


def _gate_rows(config, uses, targets):
    from qrnn_qiskit.workflows.build import build_circuits

    for mode in ["postselect"] + [f"amplify:{u}" for u in uses]:
        start = time.perf_counter()
        report = build_circuits(config, neuron_mode=mode, targets=tuple(targets), compare_synthesis=False).report
        row = {"benchmark": "amplify_study_gates", "neuron_mode": mode,
               "logical_operations": sum(report["logical"]["operations"].values()),
               "two_qubit_gates_per_step": {t["target"]: t["two_qubit_gates_per_step"] for t in report["targets"]},
               "depth_per_step": {t["target"]: t["depth"] for t in report["targets"]},
               "seconds": round(time.perf_counter() - start, 1)}
        if "amplification" in report:
            amp = report["amplification"]
            row.update({k: amp[k] for k in ("failure_bound_per_level", "neuron_failure_worst", "parameter_blocks_per_neuron")})
        yield row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--uses", default="3,5,7", help="comma-separated L of amplify:L")
    parser.add_argument("--limit", type=int, default=0, help="first N test images (0: all)")
    parser.add_argument("--trajectories", type=int, default=1, help="per image, for measured don't-care steps")
    parser.add_argument("--gates", action="store_true", help="only the gate counts of one step per mode")
    parser.add_argument("--targets", default="generic,fake_torino")
    args = parser.parse_args()
    checkpoint = load_model_or_skip(args.checkpoint, "amplify_study")
    uses = [int(u) for u in args.uses.split(",") if u]
    if args.gates:
        rows = _gate_rows(checkpoint.config, uses, args.targets.split(","))
    else:
        dataset = get_dataset("mnist01", data_dir=args.data_dir)
        rows = _accuracy_rows(checkpoint.config, checkpoint.parameters, dataset, uses, args)
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
