"""Sweeps: a grid (or a random sample of it) over training settings and seeds, one run folder per
trial, on Ray tasks or in this process.

``sweep(settings, out, grid=["optimizer=adam,rmsprop", "learning-rate=0.01,0.05"], seeds="112-116")``
trains every combination as a normal run (``out/<trial>/config.json``, ``metrics.jsonl``,
``best.npz``, ``final.npz``, and ``summary.json`` once it has ended), so every command works on a
trial. A rerun of the same sweep skips trials that ended, continues interrupted ones from their
``final.npz`` (the same trajectory, as ``qrnn resume``) and starts the rest. At the end
``out/sweep.json`` holds every trial's best validation loss, the step at which the validation loss
first fell below ``target_loss`` and its seconds, and ``out/sweep.png`` (plot extra) draws the best
loss (and, given a target, the steps to it) against the first numeric swept setting, one line per
value of the others, as the paper's Fig. 6.

Why Ray tasks and not Ray Tune: a trial here is already a run folder that records, resumes and
evaluates itself, and Tune would keep a second record of each trial (its own result folders and
restore state) beside it, add its own dependencies (pandas, pyarrow) to the ``distributed`` extra,
and restore trials from its own checkpoints rather than from the run folders users resume by
hand. What a grid needs from a scheduler, concurrency bounded by the cluster's CPUs and a place
for each task, is what Ray Core's tasks give.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.errors import QRNNError
from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.training.distributed import connect_ray, one_kernel_thread
from qrnn_qiskit.training.plot import read_metrics
from qrnn_qiskit.training.runfolder import CHECKPOINTS
from qrnn_qiskit.training.settings import TrainSettings
from qrnn_qiskit.workflows.train import resume, train

__all__ = ["sweep", "parse_grid", "parse_seeds", "trial_name", "format_sweep"]

logger = logging.getLogger("qrnn_qiskit")

_NOT_SWEPT = ("argv", "workers", "address")


def parse_seeds(seeds: str | int | Sequence[int] | None, default: int) -> list[int]:
    """``"112-116"``, ``"1,5,9"``, an int or a list -> a list of seeds (``None``: ``[default]``).

    Raises:
        ValueError: for anything else.
    """
    if seeds is None:
        return [default]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return [seeds]
    if isinstance(seeds, str):
        try:
            out: list[int] = []
            for part in seeds.split(","):
                lo, _, hi = part.strip().partition("-")
                out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise ValueError(f"seeds must look like 112-116 or 1,5,9, got {seeds!r}.") from None
    else:
        out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must name distinct seeds, got {seeds!r}.")
    return out


def _field_types() -> dict:
    """Flat setting name -> its field, for every setting a grid may sweep."""
    return {name: f for name, (_, f) in TrainSettings.options().items() if name not in _NOT_SWEPT and name != "seed"}


def _parse_value(name: str, field: dataclasses.Field, text: str):
    meta = field.metadata
    if "parse" in meta:
        return meta["parse"](text)
    if "choices" in meta and text not in meta["choices"]:
        raise ValueError(f"{name} takes one of {', '.join(meta['choices'])}, got {text!r}.")
    kind = meta.get("type", type(field.default))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} takes true or false, got {text!r}.")
        return text.lower() in ("true", "1")
    if text.lower() == "none" and field.default is None:
        return None
    try:
        return kind(text) if kind in (int, float, str) else text
    except ValueError:
        raise ValueError(f"{name} takes {kind.__name__} values, got {text!r}.") from None


def parse_grid(grid: Sequence[str] | dict) -> dict[str, list]:
    """``["optimizer=adam,rmsprop", "learning-rate=0.01,0.05"]`` -> ``{"optimizer": [...], ...}``.

    Names are settings (flags or field names); values are parsed as the setting's type.

    Raises:
        ValueError: for an unknown setting, a malformed entry or a value of the wrong type.
    """
    known = _field_types()
    items = grid.items() if isinstance(grid, dict) else []
    if not isinstance(grid, dict):
        for entry in grid:
            name, sep, values = str(entry).partition("=")
            if not sep or not values:
                raise ValueError(f"grid entries look like learning-rate=0.01,0.05; got {entry!r}.")
            items.append((name, values.split(",")))
    out: dict[str, list] = {}
    for name, values in items:
        key = name.strip().lstrip("-").replace("-", "_")
        if key == "seed":
            raise ValueError("seeds are swept with seeds (--seeds 112-116), not with the grid.")
        if key not in known:
            raise ValueError(f"grid names an unknown setting {name!r}; sweepable: {', '.join(sorted(known))}.")
        if key in out:
            raise ValueError(f"grid names {name!r} twice.")
        parsed = [v if not isinstance(v, str) else _parse_value(key, known[key], v.strip()) for v in values]
        if not parsed:
            raise ValueError(f"grid entry {name!r} has no values.")
        repeated = sorted({_text(v) for v in parsed if sum(_text(w) == _text(v) for w in parsed) > 1})
        if repeated:  # 0.01 and 1e-2 are one trial, which two folders cannot both hold
            raise ValueError(f"grid entry {name!r} gives the same value twice once parsed: {', '.join(repeated)}.")
        out[key] = parsed
    return out


def trial_name(values: dict, seed: int) -> str:
    """A folder name for a trial: ``optimizer-adam_learning-rate-0.01_seed-112``."""
    parts = [f"{k.replace('_', '-')}-{_text(v)}" for k, v in values.items()] + [f"seed-{seed}"]
    # a folder inside --out whatever the values hold (a data-dir of ../x stays a name, not a path)
    return re.sub(r"[^A-Za-z0-9_.:+=-]", "~", "_".join(parts)).replace("..", "~~")


def _text(value) -> str:
    if isinstance(value, list):
        return "+".join(":".join(str(x) for x in pair) for pair in value)
    return str(value)


def _trials(settings: TrainSettings, grid: dict, seeds: list[int], random: int | None) -> list[tuple[str, TrainSettings, dict]]:
    keys = list(grid)
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    trials = [(values, seed) for values in combos for seed in seeds]
    if random is not None:
        if isinstance(random, bool) or not isinstance(random, int) or not 1 <= random <= len(trials):
            raise ValueError(f"random must be a number of trials from 1 to {len(trials)} (the grid's size), got {random!r}.")
        picks = np.sort(np.random.default_rng(settings.run.seed).choice(len(trials), random, replace=False))
        trials = [trials[i] for i in picks]
    out = []
    for values, seed in trials:
        trial = settings.replace(**values, seed=seed)
        out.append((trial_name(values, seed), trial, {**values, "seed": seed}))
    return out


def _run_trial(settings_dict: dict, folder: str, single_thread: bool) -> dict:
    """Train (or continue) one trial into ``folder``; writes ``summary.json`` when it ends."""
    settings = TrainSettings.from_dict(settings_dict)
    if single_thread:  # a Ray task holds one CPU
        one_kernel_thread(settings.run.engine)
    path = Path(folder)
    if any((path / name).is_file() for name in CHECKPOINTS):  # a trial stopped early: its newest checkpoint
        summary = resume(path, callbacks=[])
    else:  # new, or stopped before its first checkpoint: nothing in it to keep
        summary = train(settings, path, overwrite=True, callbacks=[])
    if summary["stopped"] not in ("interrupted", "terminated"):
        atomic_write_text(path / "summary.json", json.dumps(summary, default=str))
    return summary


def _finished(folder: Path) -> dict | None:
    """A trial's ``summary.json``; None while it has none (a damaged one is reported and rerun)."""
    path = folder / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        summary = exc
    if isinstance(summary, dict) and isinstance(summary.get("stopped"), str):
        return summary
    logger.warning("sweep: %s is not a trial summary (%.80s); the trial is continued from its checkpoints", path,
                   summary)
    return None


def sweep(
    settings: TrainSettings,
    out: str | os.PathLike = "runs/sweep",
    *,
    grid: Sequence[str] | dict = (),
    seeds: str | Sequence[int] | None = None,
    random: int | None = None,
    max_concurrent: int | None = None,
    address: str | None = None,
    target_loss: float | None = None,
) -> dict:
    """Train every trial of a grid over ``settings`` and ``seeds`` into ``out``; see the module.

    Args:
        settings: the settings every trial starts from.
        out: the sweep folder; trial ``t`` trains into ``out/t``.
        grid: ``NAME=V1,V2,...`` entries (or a dict of lists) over training settings.
        seeds: ``"112-116"``, ``"1,5,9"`` or a list (default: the settings' seed).
        random: train only this many trials, drawn from the grid without replacement.
        max_concurrent: trials running at once: above 1 they run as Ray tasks. Default: 1 (one
            trial after another in this process), or with ``address`` the cluster's CPUs.
        address: a Ray cluster to run the trials on (``auto`` or ``HOST:PORT``).
        target_loss: also report the first step whose validation loss fell below it.

    Returns:
        ``{"trials": [...], "table": path, "plot": path or None, ...}``.

    Raises:
        ValueError: for an unknown setting, bad values, or a sweep folder made for another sweep.
        MissingOptionalDependency: for ``max_concurrent > 1`` or ``address`` without Ray.
    """
    grid = parse_grid(grid)
    trials = _trials(settings, grid, parse_seeds(seeds, settings.run.seed), random)
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1):
        raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}.")
    if target_loss is not None and not (target_loss > 0 and math.isfinite(target_loss)):
        raise ValueError(f"target_loss must be a positive number, got {target_loss!r}.")
    root = Path(out)
    _check_plan(root, settings, grid, trials)
    pending = [(name, trial) for name, trial, _ in trials if _finished(root / name) is None]
    logger.info("sweep: %d trials, %d already finished", len(trials), len(trials) - len(pending))
    started = time.perf_counter()
    if pending:
        if (max_concurrent or 1) > 1 or address is not None:
            _run_on_ray(root, pending, max_concurrent, address)
        else:
            for number, (name, trial) in enumerate(pending, 1):
                logger.info("sweep: trial %s (%d of %d pending) starts", name, number, len(pending))
                summary = _run_trial(trial.to_dict(), str(root / name), single_thread=False)
                logger.info("sweep: trial %s ended (%s) after %s steps in %s s, best validation loss %s", name,
                            summary["stopped"], summary["steps"], summary["seconds"], summary["best_validation_loss"])
                if summary["stopped"] in ("interrupted", "terminated"):
                    raise KeyboardInterrupt
    rows = [_row(root / name, values, target_loss) for name, _, values in trials]
    result = {"out": str(root), "swept": list(grid) + ["seed"], "target_loss": target_loss,
              "seconds": round(time.perf_counter() - started, 2), "trials": rows}
    table = atomic_write_text(root / "sweep.json", json.dumps(result, indent=1, default=str))
    result["table"] = str(table)
    result["plot"] = _plot(root, grid, rows, ["best_validation_loss"] + (["steps_to_target"] if target_loss is not None else []))
    return result


def _check_plan(root: Path, settings: TrainSettings, grid: dict, trials) -> None:
    """Record the sweep's plan in ``out/plan.json``; refuse a folder planned for another sweep."""
    plan = {"settings": {k: v for k, v in settings.to_dict().items() if k not in ("argv", "seed")},
            "grid": grid, "trials": [name for name, _, _ in trials]}
    path = root / "plan.json"
    root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plan, sort_keys=True, default=str)
    if path.is_file():
        old = _read_plan(path)
        # a plan written before a setting existed holds that setting at its default
        known = {k: v for k, v in old.get("settings", {}).items() if k not in ("argv", "seed")}
        try:
            old["settings"] = {k: v for k, v in TrainSettings.from_dict(known).to_dict().items() if k not in ("argv", "seed")}
        except (TypeError, ValueError):
            pass  # not settings this version reads: compared as they are, so refused below
        same = json.dumps({k: old.get(k) for k in ("settings", "grid")}, sort_keys=True, default=str) == \
            json.dumps({k: plan[k] for k in ("settings", "grid")}, sort_keys=True, default=str)
        if same and set(old.get("trials", [])) <= set(plan["trials"]):
            if old.get("trials") != plan["trials"]:  # more seeds (or trials) for the same sweep: extend its plan
                atomic_write_text(path, text)
            return
        raise ValueError(
            f"{root} holds another sweep (its plan.json differs: other settings or grid, or trials it does not "
            "include); choose a new out folder, rerun the same command to continue that sweep, or add seeds to it."
        )
    atomic_write_text(path, text)


def _read_plan(path: Path) -> dict:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise QRNNError(f"{path} is not a sweep plan (not JSON: {exc}). Move it away to start the sweep anew, or "
                        "choose another out folder.") from None
    if not (isinstance(plan, dict) and isinstance(plan.get("settings"), dict) and isinstance(plan.get("trials"), list)):
        raise QRNNError(f"{path} is not a sweep plan: expected a JSON object with 'settings' (an object), 'grid' and "
                        f"'trials' (a list), got {str(plan):.80}. Move it away, or choose another out folder.")
    return plan


def _run_on_ray(root: Path, pending, max_concurrent: int | None, address: str | None) -> None:
    owns = connect_ray(address, max_concurrent, "a sweep with max_concurrent > 1 or an address")
    import ray

    task = ray.remote(num_cpus=1, max_retries=0)(_run_trial)
    limit = max_concurrent or max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue, running = list(pending), {}
    try:
        while queue or running:
            while queue and len(running) < limit:
                name, trial = queue.pop(0)
                running[task.remote(trial.to_dict(), str(root / name), True)] = name
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                name = running.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise QRNNError(f"Trial {name} failed: {exc}. Finished trials are kept; rerun the sweep to "
                                    "continue the rest.") from None
    except KeyboardInterrupt:
        for ref in running:  # each trial writes its final.npz on the interrupt, for the rerun
            ray.cancel(ref)
        ray.wait(list(running), num_returns=len(running), timeout=60)
        raise
    finally:
        if owns:
            ray.shutdown()


def _row(folder: Path, values: dict, target_loss: float | None) -> dict:
    summary = _finished(folder) or {}
    row = {"trial": folder.name, **values, "best_validation_loss": summary.get("best_validation_loss"),
           "steps": summary.get("steps"), "seconds": summary.get("seconds"), "stopped": summary.get("stopped", "unfinished")}
    if target_loss is not None:
        below = [r["step"] for r in read_metrics(folder) if r["validation_loss"] < target_loss] if summary else []
        row["steps_to_target"] = below[0] if below else None
    return row


def _plot(root: Path, grid: dict, rows: list[dict], metrics: list[str]) -> str | None:
    """Each of ``metrics`` (the best validation loss; steps to the target loss where one is given)
    against the first numeric swept setting, one line per combination of the others: mean over
    seeds with a min-max band."""
    numeric = [k for k, v in grid.items() if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)]
    if not numeric or not optionals.available("matplotlib"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = numeric[0]
    others = [k for k in grid if k != x_key]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in others), []).append(row)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, members in groups.items():
            xs = sorted({m[x_key] for m in members})
            values = [[m[metric] for m in members if m[x_key] == x and m[metric] is not None] for x in xs]
            means = [sum(v) / len(v) if v else math.nan for v in values]
            ax.plot(xs, means, marker="o", label=", ".join(f"{k}={v}" for k, v in zip(others, label)) or "all")
            ax.fill_between(xs, [min(v) if v else math.nan for v in values],
                            [max(v) if v else math.nan for v in values], alpha=0.2)
        # log axes only where every x (and some y) is positive: a swept 0 (weight decay) or a sweep
        # in which no trial reached the target loss cannot be log-scaled
        reached = [row[metric] for row in rows if row[metric] is not None and row[metric] > 0]
        if reached and all(row[x_key] > 0 for row in rows):
            ax.set_xscale("log")
        if reached:
            ax.set_yscale("log")
        elif metric == "steps_to_target":
            ax.text(0.5, 0.5, "no trial reached the target loss", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(x_key.replace("_", " "))
        ax.set_ylabel("steps to the target loss" if metric == "steps_to_target" else "best validation loss")
        ax.set_title("mean over seeds; band: min to max", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = root / "sweep.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def format_sweep(result: dict) -> str:
    """The sweep's table as aligned text."""
    rows = result["trials"]
    keys = result["swept"] + ["best_validation_loss"] + (["steps_to_target"] if result["target_loss"] is not None else []) \
        + ["steps", "seconds", "stopped"]
    cells = [[_cell(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
