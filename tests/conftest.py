from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

SHARED = TESTS.parent.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The project's shared/ folder beside the checkout; tests that need it skip without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside this checkout")
    return SHARED


@pytest.fixture
def small_checkpoint(tmp_path) -> Path:
    """A 4-qubit simple-bits model (I=1, W=2, S=1, order 1, degree 1) with spread-out weights."""
    from qrnn_qiskit.core.config import QRNNConfig
    from qrnn_qiskit.models.checkpoint import Checkpoint, save_checkpoint

    config = QRNNConfig(input_width=1, workspace=2, stages=1, order=1, degree=1)
    params = config.initial_parameters(bias_spread=0.8, weights_spread=0.8, unitaries_spread=0.8, seed=4)
    meta = {"dataset": "simple-bits", "settings": {"dataset": "simple-bits", "sentence_length": 3}}
    return save_checkpoint(tmp_path / "small.npz", Checkpoint(config, params, meta))


@pytest.fixture(autouse=True)
def _no_user_data_cache(tmp_path_factory, monkeypatch):
    """Tests never read or fill the user's data cache: QRNN_DATA_DIR points at an absent folder."""
    monkeypatch.setenv("QRNN_DATA_DIR", str(tmp_path_factory.mktemp("cache") / "absent"))
