"""Callbacks of the training loop: everything a run does besides optimising.

The loop (:func:`qrnn_qiskit.training.loop.fit`) calls, on every callback in order,
``on_train_start(state)``, ``on_step(state)`` after each optimiser step,
``on_validation(state, record, improved, batch)`` after each validation and
``on_train_end(state, summary)`` once, also after Ctrl-C. A run folder is written by
:class:`CheckpointWriter` (``config.json``, ``best.npz``, ``last.npz``, ``final.npz``), :class:`MetricsWriter`
(``metrics.jsonl``) and :class:`TensorBoardWriter`; :class:`ConsoleProgress` and :class:`ShowSamples`
talk to a person. Subclass :class:`Callback` for your own (early stopping: set ``state.stop``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from qrnn_qiskit.core import optionals
from qrnn_qiskit.core.io import atomic_write_text
from qrnn_qiskit.engine.memory import density_bytes
from qrnn_qiskit.models.checkpoint import save_checkpoint
from qrnn_qiskit.models.registry import make_engine

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
    improvement, ``last.npz`` at the start, every ``checkpoint_every`` steps or
    ``checkpoint_seconds`` seconds (whichever comes first) and at the end, and ``final.npz`` at the
    end (after a signal or a divergence too: the last finite state). Every write is atomic, so a
    kill loses at most one interval and never leaves a half-written file."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self._written = (0, 0.0)  # (step, time) of the last last.npz

    def on_train_start(self, state) -> None:
        path = self.out / "config.json"
        if state.resumed_from is None or not path.exists():
            document = {"settings": state.settings.to_dict(), "model": state.config.to_dict(),
                        "dataset": state.dataset.describe()}
            if state.settings.model.kind == "qrnn":  # what the engine computes, the noise read from a backend too
                document["engine"] = {**state.engine_spec.to_dict(), "meaning": state.engine_spec.meaning,
                                      "backend": state.engine_spec.backend}
            if state.resumed_from is not None:
                document["resumed_from"] = state.resumed_from
            atomic_write_text(path, json.dumps(document, indent=1))
        self._write_last(state)  # the newest checkpoint from the start: a resumed folder's older final is not

    def on_step(self, state) -> None:
        run = state.settings.run
        validates = state.step % run.validate_every == 0 or state.step == run.steps
        if self._due(state) and not validates:  # a validation step is written after it (on_validation)
            self._write_last(state)

    def _due(self, state) -> bool:
        run = state.settings.run
        step, when = self._written
        return state.step - step >= run.checkpoint_every or time.perf_counter() - when >= run.checkpoint_seconds

    def _write_last(self, state) -> None:
        save_checkpoint(self.out / "last.npz", state.to_checkpoint("last"))
        self._written = (state.step, time.perf_counter())

    def on_validation(self, state, record, improved, batch) -> None:
        if improved:
            save_checkpoint(self.out / "best.npz", state.to_checkpoint("best", record))
        if self._due(state):  # after the validation: its random stream is where a resumed run expects it
            self._write_last(state)

    def on_train_end(self, state, summary) -> None:
        save_checkpoint(self.out / "final.npz", state.to_checkpoint("final"))
        self._write_last(state)


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
    """A progress line on standard error (redrawn in place on a terminal: steps, loss, time left)
    and one line per validation.

    The rate and the time left are measured from the second step on: the first step of a process
    also loads (or compiles) the engine's kernels, and an estimate that counted it would start
    far too high."""

    def __init__(self, file=None, min_interval: float = 0.2) -> None:
        self.file = file
        self.min_interval = min_interval
        self.total = 0
        self._since = None  # (step, time) the rate is measured from
        self._drawn = 0.0
        self._open = False

    @property
    def stream(self):
        return self.file if self.file is not None else sys.stderr

    def on_train_start(self, state) -> None:
        self.total = state.settings.run.steps
        self._since = None
        print(f"training {state.settings.model.kind} ({state.config.num_parameters} parameters) on "
              f"{state.settings.data.dataset}", file=self.stream, flush=True)
        if state.settings.model.kind == "qrnn" and state.settings.run.device_meaning:
            spec = state.engine_spec
            lanes = state.config.num_lanes
            mib = density_bytes(lanes, 1, spec.complex_amplitudes) / 2**20
            print(f"meaning: {spec.meaning} ({spec.backend} path: 4**(I+W) = 4**{lanes} numbers, {mib:.3g} MiB "
                  "a sequence)", file=self.stream, flush=True)
            if spec.noise is not None:
                print(f"noise: {spec.noise}", file=self.stream, flush=True)

    def on_step(self, state) -> None:
        now = time.perf_counter()
        if self._since is None:
            self._since = (state.step, now)
        if not getattr(self.stream, "isatty", lambda: False)() or now - self._drawn < self.min_interval:
            return
        self._drawn = now
        done, start = self._since
        rate = (state.step - done) / (now - start) if now > start and state.step > done else 0.0
        left = f"  {(self.total - state.step) / rate:.0f} s left" if rate > 0 else ""
        self.stream.write(f"\r  step {state.step}/{self.total}  loss {state.last_loss:.4f}{left}\x1b[K")
        self.stream.flush()
        self._open = True

    def _line(self, text: str) -> None:
        if self._open:  # end the progress line; the next step redraws it
            self.stream.write("\r\x1b[K")
            self._open = False
        print(text, file=self.stream, flush=True)

    def on_validation(self, state, record, improved, batch) -> None:
        self._line(
            f"step {record['step']:5d}  loss {record['loss']:.5f}  val {record['validation_loss']:.5f}  "
            f"cer {record['character_error_rate']:.3f}  {'*' if improved else ' '}  {record['seconds']:.1f}s"
        )

    def on_train_end(self, state, summary) -> None:
        if state.stopped in ("interrupted", "terminated"):
            self._line(f"{state.stopped} at step {state.step}; writing final.npz (qrnn resume continues it)")
        elif state.stopped == "diverged":
            self._line(f"diverged at step {state.step + 1}; writing the last finite state (step {state.step})")
        elif self._open:
            self._line("")


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
        print(render_samples(state.dataset, state.config, state.parameters, batch, self.count, seed=state.step),
              file=self.file if self.file is not None else sys.stderr, flush=True)


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
