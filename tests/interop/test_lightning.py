"""The PyTorch module inside Lightning: a LightningModule with Adam and Lightning's gradient
clipping ends where ``qrnn train`` ends, and with a learning-rate scheduler where a plain torch loop
with the same scheduler ends."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from qrnn_qiskit.torch import QRNNModule, reference_loss  # noqa: E402
from qrnn_qiskit.training.settings import TrainSettings  # noqa: E402
from qrnn_qiskit.training.state import TrainState  # noqa: E402
from qrnn_qiskit.workflows.train import train  # noqa: E402

SMALL = dict(dataset="simple-seq", workspace=2, stages=1, order=1, degree=2, sentence_length=6, batch_size=2,
             learning_rate=0.05, seed=5, initial_weights_spread=0.3, initial_unitaries_spread=0.3)
STEPS = 20


class QRNNLightning(pl.LightningModule):
    """The QRNN as a LightningModule: the reference loss on its teacher-forced distributions."""

    def __init__(self, config, parameters, scored, learning_rate: float, step_size: int | None = None):
        super().__init__()
        self.qrnn = QRNNModule(config, parameters)
        self.scored, self.learning_rate, self.step_size = scored, learning_rate, step_size

    def training_step(self, batch, _index):
        inputs, targets = batch
        return reference_loss(self.qrnn(inputs, targets).probabilities, targets.numpy(), self.scored)

    def configure_optimizers(self):
        optimiser = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        if self.step_size is None:
            return optimiser
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=self.step_size, gamma=0.5)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _setup():
    settings = TrainSettings(**SMALL, optimizer="adam", steps=STEPS, validate_every=STEPS)
    dataset = settings.load_dataset()
    state = TrainState.initial(settings, dataset)  # qrnn train's initial draw and batch stream
    batches = [tuple(torch.as_tensor(a) for a in dataset.batch(settings.data.batch_size, state.rng, "train").engine_arrays())
               for _ in range(STEPS)]
    return settings, dataset, state, batches


def _fit(module, batches, **trainer_options):
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_options)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(module, loader)
    assert trainer.global_step == STEPS
    return module.qrnn.weights.detach().numpy()


def test_lightning_with_adam_and_clipping_ends_where_qrnn_train_ends(tmp_path):
    settings, dataset, state, batches = _setup()
    train(settings, tmp_path / "run", callbacks=[])
    trained = np.load(tmp_path / "run" / "final.npz")["parameters"]
    module = QRNNLightning(state.config, state.parameters, dataset.scored(), settings.optimizer.learning_rate)
    weights = _fit(module, batches, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
    assert np.abs(trained - state.parameters).max() > 1e-2  # the runs moved
    np.testing.assert_allclose(weights, trained, atol=1e-10, rtol=0)


def test_lightning_scheduler_follows_a_plain_torch_loop():
    settings, dataset, state, batches = _setup()
    scored = dataset.scored()
    module = QRNNLightning(state.config, state.parameters, scored, 0.05, step_size=5)  # halved every 5 steps
    weights = _fit(module, batches)
    model = QRNNModule(state.config, state.parameters)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=5, gamma=0.5)
    for inputs, targets in batches:
        optimiser.zero_grad()
        reference_loss(model(inputs, targets).probabilities, targets.numpy(), scored).backward()
        optimiser.step()
        scheduler.step()
    np.testing.assert_allclose(weights, model.weights.detach().numpy(), atol=1e-12, rtol=0)
    assert module.lr_schedulers().get_last_lr() == [0.05 / 16]
    constant = _fit(QRNNLightning(state.config, state.parameters, scored, 0.05), batches)
    assert np.abs(constant - weights).max() > 1e-3  # the schedule changed the run
