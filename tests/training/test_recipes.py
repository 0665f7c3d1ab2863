"""Named recipes: the settings reproduce.py trains, on the command line as --recipe."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qrnn_qiskit.cli import main
from qrnn_qiskit.training.recipes import RECIPES, list_recipes, recipe_settings


def test_every_recipe_is_valid_settings_and_overrides_win():
    for name in RECIPES:
        settings = recipe_settings(name)
        assert settings.data.dataset == RECIPES[name]["settings"]["dataset"]
    quick = recipe_settings("digits01", steps=20, seed=3)
    assert (quick.run.steps, quick.run.seed, quick.model.workspace, quick.optimizer.lr_schedule) == (20, 3, 7, [[130, 0.002]])
    with pytest.raises(ValueError, match="Unknown recipe 'mnist99'; available: simple-seq"):
        recipe_settings("mnist99")
    assert [entry["name"] for entry in list_recipes()] == list(RECIPES)


def test_the_command_line_takes_a_recipe_and_the_options_typed_beside_it(tmp_path):
    result = CliRunner().invoke(main, ["train", "--recipe", "digits01", "--steps", "2", "--validate-every", "2",
                                       "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "config.json").read_text())["settings"]
    assert settings["steps"] == 2 and settings["workspace"] == 7 and settings["batch_size"] == 50
    listing = CliRunner().invoke(main, ["recipes"])
    assert listing.exit_code == 0 and "digits01" in listing.output and "mnist01" in listing.output
    unknown = CliRunner().invoke(main, ["train", "--recipe", "nope"])
    assert unknown.exit_code == 2 and "Unknown recipe 'nope'" in unknown.output
