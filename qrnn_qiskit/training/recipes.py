"""Named training recipes: the paper's tasks with the settings that reproduce them here.

``qrnn train --recipe digits01`` trains one (options given beside it override the recipe's), and
``qrnn recipes`` lists them; in Python, ``train(recipe_settings("digits01"), "runs/digits01")``.
``benchmarks/reproduce.py`` trains and evaluates the same recipes with seeds and ensembles. The
MNIST-family recipes read the reference's data files: pass ``data_dir``, or fetch them into the
cache with ``qrnn datasets fetch NAME``.
"""

from __future__ import annotations

from qrnn_qiskit.training.settings import TrainSettings

__all__ = ["RECIPES", "list_recipes", "recipe_settings"]

# The reference implementation's settings where it has them (its saved arguments and logs).
# mnist01's model and data for both of its recipes below. The reference ran 50 images per digit on
# each of 2 shards and averaged their gradients: 200 images a step, which is --batch-size 100 (per
# digit) on one process. The best checkpoint is chosen on 400 fixed validation images, not on one
# random batch.
_MNIST01 = dict(
    dataset="mnist01", workspace=8, stages=2, order=2, degree=2, batch_size=100, optimizer="adam",
    learning_rate=0.005, initial_bias_spread=0.1, initial_weights_spread=0.0, initial_unitaries_spread=0.01,
    validation_size=400,
)

_SETTINGS = {
    "simple-seq": dict(
        dataset="simple-seq", workspace=5, stages=2, order=2, degree=3, batch_size=2, optimizer="adam",
        learning_rate=0.05, initial_bias_spread=0.5, initial_weights_spread=0.5,
        initial_unitaries_spread=0.5, steps=500, stop_at_loss=1e-3, seed=112,
    ),
    "dna": dict(
        dataset="dna", sentence_length=20, workspace=5, stages=1, order=2, degree=3, batch_size=128,
        optimizer="adam", learning_rate=0.01, steps=5000, stop_at_loss=1e-3, seed=1,
    ),
    # The Quickstart's run: W=7, 50 images per digit a step, Adam 0.005 falling to 0.002 after
    # step 130, the best checkpoint chosen on the whole validation split (72 images), 1,200 steps
    # (about a minute on two cores). Seeds 1-4 reach 81, 78, 99 and 83 % (benchmarks/runs/digits01-quickstart).
    "digits01": dict(
        dataset="digits01", workspace=7, stages=2, order=2, degree=2, batch_size=50, optimizer="adam",
        learning_rate=0.005, initial_bias_spread=0.1, initial_weights_spread=0.0,
        initial_unitaries_spread=0.01, steps=1200, seed=1, lr_schedule=[[130, 0.002]], validation_size=0,
    ),
    # mnist01's recipe on the 8x8 digits: W=8, 100 images per digit a step, Adam 0.005 falling to
    # 0.002 (here after step 130, read off a run that at 0.005 never settled), the best checkpoint
    # chosen on the whole validation split (72 images). benchmarks/runs/digits01-w8/seed-1.
    "digits01-w8": dict(
        dataset="digits01", workspace=8, stages=2, order=2, degree=2, batch_size=100, optimizer="adam",
        learning_rate=0.005, initial_bias_spread=0.1, initial_weights_spread=0.0,
        initial_unitaries_spread=0.01, steps=1880, seed=1, lr_schedule=[[130, 0.002]], validation_size=0,
    ),
    # Table 1's L-BFGS row: {3,6} not deskewed, I2 W6 S2 d3 (1,292 parameters), L-BFGS 0.02 on 200
    # images a step (100 per digit here), the reference's spreads 0.1 / 0.01 / 0.01; its runs had
    # their best checkpoints at steps 90-170. Those runs had gradient clipping off (the reference's
    # main.py of 2020-06-17..20; docs/reference-training.md), and so does this recipe: with it on,
    # no seed left the two-class plateau. 200 steps; the best is chosen on 400 fixed validation images.
    "mnist36": dict(
        dataset="mnist36", workspace=6, stages=2, order=2, degree=3, batch_size=100, optimizer="lbfgs",
        learning_rate=0.02, grad_clip=0.0, initial_bias_spread=0.1, initial_weights_spread=0.01,
        initial_unitaries_spread=0.01, steps=200, seed=1, validation_size=400,
    ),
    # Table 1's Adam row: {3,6} deskewed, mnist01's model and recipe (I2 W8 S2 d2, 1,212 parameters,
    # Adam 0.005, 200 images a step, spreads 0.1 / 0 / 0.01); the reference's best checkpoints were
    # at steps 840-2150; the best is chosen on 400 fixed validation images. At 0.005 throughout,
    # seed 1 left the plateau by step 40 (validation 0.21 at step 100) and was thrown back to 0.53
    # by step 190, as mnist01 was at 0.005; so, as for mnist01, 0.002 from step 100 on.
    "mnist36-ds": dict(
        dataset="mnist36-ds", workspace=8, stages=2, order=2, degree=2, batch_size=100, optimizer="adam",
        learning_rate=0.005, initial_bias_spread=0.1, initial_weights_spread=0.0,
        initial_unitaries_spread=0.01, steps=2000, seed=1, lr_schedule=[[100, 0.002]], validation_size=400,
    ),
    # Table 1's t-SNE row: all ten digits as 2-D t-SNE coordinates of 5 bits (the reference's
    # encoding before it switched to UMAP), I2 W8 S2 d3 (3,396 parameters), Adam 0.005, 32 images
    # per digit on each of 2 shards (64 per digit a step here), spreads 0.1 / 0 / 0.01, at most
    # 6,500 steps. The paper's 94.6 % is per label word.
    "tsne": dict(
        dataset="mnist-tsne-d2-r5", workspace=8, stages=2, order=2, degree=3, batch_size=64,
        optimizer="adam", learning_rate=0.005, initial_bias_spread=0.1, initial_weights_spread=0.0,
        initial_unitaries_spread=0.01, steps=6500, seed=1, validation_size=1000,
    ),
    # Table 1's UMAP row: 3-D supervised UMAP coordinates of 5 bits, I3 W7 S2 d3 (3,134
    # parameters), 64 images per digit on each of 2 shards (128 per digit a step), spreads 0.1 /
    # 0.01 / 0.01. The reference swept Adam 0.1 / 0.03 / 0.01 over 1,000 steps (2-hour runs); here
    # 0.03, which descends fastest but is thrown back by step 300, falling to 0.01 after step 200
    # and 0.003 after step 1,500, 2,500 steps (0.01 throughout for 1,000 steps:
    # benchmarks/runs/umap-lr0.01). The paper's 96.7 % is per label word.
    "umap": dict(
        dataset="mnist-umap-d3-r5", workspace=7, stages=2, order=2, degree=3, batch_size=128,
        optimizer="adam", learning_rate=0.03, lr_schedule=[[200, 0.01], [1500, 0.003]],
        initial_bias_spread=0.1, initial_weights_spread=0.01, initial_unitaries_spread=0.01, steps=2500, seed=1,
        validation_size=1000,
    ),
    "mnist01": dict(
        _MNIST01,
        # 1,400 steps or 10 minutes of training, whichever comes first (the engine issue's budget
        # on the shared 2-core machine, where a step takes 0.3-0.47 s as the machine is loaded);
        # the best checkpoint so far is evaluated either way. --timeout 0 lifts the limit.
        steps=1400, seed=1, timeout=600,
        # Every seed leaves the 0.42 plateau by step 100-150 at 0.005, and most are thrown back by
        # step 200 (benchmarks/runs/mnist01-drop390); 0.002 from step 120 on keeps them descending
        # (a trial of it on seed 1: 97.1 % where the drop at 390 gave 88.4 %), and 0.001 from step 800 on settles them.
        lr_schedule=[[120, 0.002], [800, 0.001]],
    ),
    # The recipe of Table 1's first mnist01 runs (benchmarks/runs/mnist01-drop390): the
    # drop to 0.002 at step 390 was read off seed 35557, the one run that reached 98 % with it.
    "mnist01-drop390": dict(_MNIST01, steps=900, seed=35557, lr_schedule=[[390, 0.002]]),
}

#: one line per recipe, for ``qrnn recipes``
_DESCRIPTIONS = {
    "simple-seq": "the paper's simple sequence task, I3 W5 S2 d3: validation loss 1e-3 in about 300 steps",
    "dna": "recall a marked base (Fig. 9), L=20, I3 W5 S1 d3: validation loss 1e-3 in about 100 steps",
    "digits01": "scikit-learn's 8x8 digits 0/1 (built in), W7, 1,200 steps in about a minute: 78-99 % test accuracy (seeds 1-4)",
    "digits01-w8": "the same digits on mnist01's model (W8, 100 images per digit a step), 1,880 steps",
    "mnist36": "Table 1's MNIST 3/6 L-BFGS row (I2 W6 S2 d3), no gradient clipping as the reference's runs, 200 steps",
    "mnist36-ds": "Table 1's MNIST 3/6 deskewed Adam row (I2 W8 S2 d2), 2,000 steps",
    "tsne": "Table 1's t-SNE row: all ten digits, 2-D t-SNE coordinates of 5 bits, 6,500 steps",
    "umap": "Table 1's UMAP row: all ten digits, 3-D UMAP coordinates of 5 bits, 2,500 steps",
    "mnist01": "Table 1's MNIST 0/1 row (I2 W8 S2 d2), 1,400 steps or 10 minutes: 98-99 % on two of four seeds",
    "mnist01-drop390": "the earlier MNIST 0/1 recipe (the rate dropped at step 390), 900 steps",
}
RECIPES = {name: {"description": _DESCRIPTIONS[name], "settings": settings} for name, settings in _SETTINGS.items()}


def recipe_settings(recipe: str, **overrides) -> TrainSettings:
    """The settings of ``recipe``, with ``overrides`` (flat setting names) taking precedence.

    Raises:
        ValueError: for an unknown recipe (naming those there are) or bad overrides.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; available: {', '.join(RECIPES)} (qrnn recipes lists them).")
    return TrainSettings(**{**RECIPES[recipe]["settings"], **overrides})


def list_recipes() -> list[dict]:
    """Every recipe: its name, dataset, what it does and its settings."""
    return [{"name": name, "dataset": r["settings"]["dataset"], "description": r["description"],
             "settings": dict(r["settings"])} for name, r in RECIPES.items()]
