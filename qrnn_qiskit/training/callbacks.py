"""Callbacks of the training loop: everything a run does besides optimising.

The loop (:func:`qrnn_qiskit.training.trainer.fit`) calls, on every callback in order,
``on_train_start(state)``, ``on_step(state)`` after each optimiser step,
``on_validation(state, record, improved, batch)`` after each validation and
``on_train_end(state, summary)`` once, also after Ctrl-C. A run folder is written by
:class:`CheckpointWriter` (``config.json``, ``best.npz``, ``final.npz``), :class:`MetricsWriter`
(``metrics.jsonl``) and :class:`TensorBoardWriter`; :class:`ConsoleProgress` and :class:`ShowSamples`
talk to a person. Subclass :class:`Callback` for your own (early stopping: set ``state.stop``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.models import make_engine
from qrnn_qiskit.training.checkpoint import save_checkpoint

__all__ = ["Callback", "CheckpointWriter", "MetricsWriter", "TensorBoardWriter", "ConsoleProgress", "ShowSamples"]


class Callback:
    """Base class: every hook does nothing."""

    def on_train_start(self, state) -> None:
        pass

    def on_step(self, state) -> None:
        pass

    def on_validation(self, state, record: dict, improved: bool, batch) -> None:
        pass

    def on_train_end(self, state, summary: dict) -> None:
        pass


class CheckpointWriter(Callback):
    """``config.json`` at the start (a resumed run: only into a new folder), ``best.npz`` on each
    improvement, ``final.npz`` at the end."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def on_train_start(self, state) -> None:
        path = self.out / "config.json"
        if state.resumed_from is None or not path.exists():
            document = {"settings": state.settings.to_dict(), "model": state.config.to_dict(),
                        "dataset": state.dataset.describe()}
            if state.resumed_from is not None:
                document["resumed_from"] = state.resumed_from
            atomic_write_text(path, json.dumps(document, indent=1))

    def on_validation(self, state, record, improved, batch) -> None:
        if improved:
            save_checkpoint(self.out / "best.npz", state.to_checkpoint("best", record))

    def on_train_end(self, state, summary) -> None:
        save_checkpoint(self.out / "final.npz", state.to_checkpoint("final"))


class MetricsWriter(Callback):
    """One JSON line per validation in ``metrics.jsonl``."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / "metrics.jsonl"

    def on_validation(self, state, record, improved, batch) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class TensorBoardWriter(Callback):
    """Scalars of each validation record as TensorBoard event files under ``out/tensorboard``."""

    def __init__(self, out: str | Path) -> None:
        from qrnn_qiskit.core import optionals

        optionals.require("tensorboard", "tensorboard=True")
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(Path(out) / "tensorboard"))

    def on_validation(self, state, record, improved, batch) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [
            Summary.Value(tag=key, simple_value=float(value))
            for key, value in record.items()
            if key not in ("step", "seconds") and value is not None
        ]
        self.writer.add_event(Event(wall_time=time.time(), step=int(record["step"]), summary=Summary(value=values)))
        self.writer.flush()


class ConsoleProgress(Callback):
    """A ``click.progressbar`` on standard error (drawn only on a terminal) and one line per validation."""

    def __init__(self, file=None) -> None:
        self.file = file
        self.bar = None

    def on_train_start(self, state) -> None:
        self.bar = click.progressbar(
            length=state.settings.steps, file=self.file or sys.stderr, show_pos=True, show_eta=True,
            label=f"training {state.settings.model} ({state.config.num_parameters} parameters) on {state.settings.dataset}",  # printed once where no bar can be drawn
            item_show_func=lambda loss: None if loss is None else f"loss {loss:.4f}",
        )
        self.bar.__enter__()
        self.bar.update(state.step)

    def on_step(self, state) -> None:
        self.bar.update(1, state.last_loss)

    def _line(self, text: str) -> None:
        self.bar.render_finish()  # ends the bar's line on a terminal; the next update redraws it
        click.echo(text, file=self.file, err=self.file is None)

    def on_validation(self, state, record, improved, batch) -> None:
        self._line(
            f"step {record['step']:5d}  loss {record['loss']:.5f}  val {record['validation_loss']:.5f}  "
            f"cer {record['character_error_rate']:.3f}  {'*' if improved else ' '}  {record['seconds']:.1f}s"
        )

    def on_train_end(self, state, summary) -> None:
        if state.stopped == "interrupted":
            self._line(f"interrupted at step {state.step}; writing final.npz")
        self.bar.__exit__(None, None, None)


class ShowSamples(Callback):
    """On an improvement (at most every ``every`` steps), a few validation sequences with the
    model's sampled answers."""

    def __init__(self, count: int = 2, every: int = 100, file=None) -> None:
        self.count, self.every, self.file = count, every, file
        self.last_shown = None

    def on_validation(self, state, record, improved, batch) -> None:
        if not improved or (self.last_shown is not None and state.step - self.last_shown < self.every):
            return
        self.last_shown = state.step
        click.echo(render_samples(state.dataset, state.config, state.parameters, batch, self.count, seed=state.step),
                   file=self.file, err=self.file is None)


def render_samples(dataset, config, params: np.ndarray, batch, count: int = 2, seed=None) -> str:
    """A few sequences of ``batch`` in human form with the model's sampled answers."""
    inputs, targets = batch.engine_arrays()
    picks = slice(0, min(count, inputs.shape[0]))
    result = make_engine(config).simulate(params, inputs[picks], targets[picks], sample=dataset.sampled(targets[picks]),
                                          seed=seed)
    scored = dataset.scored()
    lines = []
    for b in range(result.outcomes.shape[0]):
        want = targets[b, scored].tolist()
        got = result.outcomes[b, scored].tolist()
        p_right = float(np.prod(result.probabilities[b, scored, :][np.arange(scored.sum()), want]))
        lines.append(dataset.render(batch.inputs[b]))
        lines.append(f"  target {want}  sampled {got}  P(right) {p_right:.3f}  {'ok' if want == got else 'WRONG'}")
    return "\n".join(lines)
