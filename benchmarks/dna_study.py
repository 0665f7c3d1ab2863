"""The paper's DNA length study (Fig. 9): steps to validation loss 1e-3 against the sequence length
for the QRNN, an LSTM and an RNN of about 888 parameters; prints one JSON line per model and
length and draws ``dna-study.png``.

Each model is one ``qrnn sweep`` over ``sentence-length`` and seeds into ``OUT/<model>`` (run
folders kept; a rerun continues), with the paper's settings: QRNN I3 W5 S1 order 2 degree 3
(Adam 0.01), LSTM hidden 10 (Adam 0.1), RNN hidden 22 (Adam 0.01), batch 128, validation every
10 steps, stopping at validation loss 1e-3 or ``--max-steps``. A trial that never reaches 1e-3
counts as ``--max-steps`` in the median, as the paper counted its timeouts. With
``--baselines-score-all-steps`` the LSTM and RNN put every step in their loss and validation loss,
as the paper's baseline notebooks did (the QRNN, like the reference's, scores the last step);
``--baselines-loss cross-entropy`` trains them on the cross-entropy of their logits instead of the
reference loss, the validation loss and its 1e-3 threshold then being that cross-entropy.

Usage: python benchmarks/dna_study.py [--lengths 5,20,100] [--seeds 1-3] [--max-steps 1000]
       [--max-concurrent 2] [--out benchmarks/runs/dna-study]
       python benchmarks/dna_study.py --collect DIR [--collect DIR ...] [--out DIR]
           (no training: the finished sweeps' sweep.json of each DIR/<model>, one table and plot)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from qrnn_qiskit.models.classical import LOSSES
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.sweep import sweep

PAPER = {  # median steps to 1e-3 in the paper (digest section 4), by length
    "qrnn": {5: 80, 10: 180, 20: 230, 50: 255, 100: 370, 200: 380, 500: 305, 1000: 180},
    "lstm": {5: 41, 10: 193, 20: 361, 50: 500, 100: 881, 200: 1187, 500: 1543, 1000: 952},
    "rnn": {5: 47, 10: 350},
}
MODELS = {
    "qrnn": dict(model="qrnn", workspace=5, stages=1, order=2, degree=3, learning_rate=0.01),
    "lstm": dict(model="lstm", hidden=10, learning_rate=0.1),
    "rnn": dict(model="rnn", hidden=22, learning_rate=0.01),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="5,20,100")
    parser.add_argument("--seeds", default="1-3")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--models", default="qrnn,lstm,rnn")
    parser.add_argument("--baselines-loss", default="reference", choices=LOSSES,
                        help="LSTM and RNN: the reference loss (as the QRNN) or cross-entropy of their logits")
    parser.add_argument("--baselines-score-all-steps", action="store_true",
                        help="LSTM and RNN: loss and validation loss on every step (the paper's baselines)")
    parser.add_argument("--out", default="benchmarks/runs/dna-study")
    parser.add_argument("--collect", action="append", default=[],
                        help="a study folder whose finished sweeps to read (repeatable); nothing is trained")
    args = parser.parse_args()
    if args.collect:
        _collect(args)
        return
    lengths = [int(x) for x in args.lengths.split(",")]
    results = {}
    for name in args.models.split(","):
        settings = TrainSettings(dataset="dna", batch_size=128, optimizer="adam", steps=args.max_steps,
                                 stop_at_loss=1e-3, validate_every=10, **MODELS[name],
                                 score_all_steps=args.baselines_score_all_steps and name != "qrnn",
                                 loss=args.baselines_loss if name != "qrnn" else "reference")
        out = sweep(settings, Path(args.out) / name, grid={"sentence_length": lengths}, seeds=args.seeds,
                    max_concurrent=args.max_concurrent, target_loss=1e-3)
        for length in lengths:
            rows = [r for r in out["trials"] if r["sentence_length"] == length]
            steps = [r["steps_to_target"] if r["steps_to_target"] is not None else args.max_steps for r in rows]
            results[(name, length)] = steps
            print(json.dumps({"benchmark": "dna_study", "model": name, "length": length,
                              "num_parameters": None if not rows else _parameters(settings),
                              "steps_to_1e-3": steps, "median": statistics.median(steps),
                              "reached": sum(r["steps_to_target"] is not None for r in rows),
                              "paper_median": PAPER[name].get(length), "max_steps": args.max_steps}), flush=True)
    _plot(Path(args.out) / "dna-study.png", results, lengths, [args.max_steps])


def _collect(args) -> None:
    """One table and plot from the ``sweep.json`` of finished sweeps in several study folders."""
    results: dict = {}
    caps: dict = {}  # each sweep's own cap (its settings' steps), which a trial never reaching 1e-3 counts
    for folder in args.collect:
        for name in args.models.split(","):
            path = Path(folder) / name / "sweep.json"
            if not path.exists():
                continue
            plan = json.loads((path.parent / "plan.json").read_text())["settings"]
            label = _label(name, plan)
            cap = plan["steps"]
            for row in json.loads(path.read_text())["trials"]:
                steps = row["steps_to_target"] if row["steps_to_target"] is not None else cap
                results.setdefault((label, row["sentence_length"]), []).append(steps)
                caps[(label, row["sentence_length"])] = cap
    for (name, length), steps in sorted(results.items()):
        cap = caps[(name, length)]
        print(json.dumps({"benchmark": "dna_study", "model": name, "length": length, "steps_to_1e-3": steps,
                          "median": statistics.median(steps), "reached": sum(s < cap for s in steps),
                          "paper_median": PAPER[name.split(" ")[0]].get(length), "max_steps": cap}),
              flush=True)
    lengths = sorted({length for _, length in results})
    _plot(Path(args.out) / "dna-study.png", results, lengths, sorted(set(caps.values())))


def _label(name: str, plan: dict) -> str:
    """A model's series name: the model, and how its loss differs from the reference's last step."""
    notes = ([plan["loss"]] if plan.get("loss", "reference") != "reference" else []) + (
        ["loss on all steps"] if plan.get("score_all_steps") else [])
    return f"{name} ({', '.join(notes)})" if notes else name


def _parameters(settings: TrainSettings) -> int:
    return settings.model_config(3).num_parameters


def _plot(path: Path, results: dict, lengths: list[int], caps: list[int]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, colour in (("qrnn", "C0"), ("lstm", "C1"), ("rnn", "C2")):
        labels = sorted({label for label, _ in results if label.split(" ")[0] == name})
        for label, style in zip(labels, ("o-", "s-.", "^:", "v-")):
            xs = [n for n in lengths if (label, n) in results]
            if not xs:
                continue
            ax.plot(xs, [statistics.median(results[(label, n)]) for n in xs], style, color=colour, label=f"{label} (here)")
            for n in xs:
                ax.scatter([n] * len(results[(label, n)]), results[(label, n)], color=colour, alpha=0.3, s=12)
        paper = sorted(PAPER[name].items())
        ax.plot([n for n, _ in paper], [s for _, s in paper], "x--", color=colour, alpha=0.6, label=f"{name} (paper)")
    for cap in caps:  # the step caps (a run never reaching 1e-3)
        ax.axhline(cap, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("steps to validation loss 1e-3 (median; dots: seeds)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
