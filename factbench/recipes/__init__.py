"""Reference training recipes (METHOD.md §4): `factbench train --recipe R --config C.yaml`.

| recipe        | what trains, on what                                                          | file          |
|---------------|-------------------------------------------------------------------------------|---------------|
| `sft`         | all parameters, cross-entropy, Known + Unknown training facts                  | sft.py        |
| `freeze`      | SFT with a trainable-parameter preset (`attention` by default, `ffn`, patterns) | freeze.py     |
| `selfdistill` | stage 1: SFT on Known facts = frozen teacher; stage 2: CE + λτ²·KL to it        | selfdistill.py|
| `known-only`  | SFT on the Known training facts only: the stability reference                  | known_only.py |
| `l2anchor`    | SFT + λ·‖θ − θ_a‖², a pull to the base (or, l2_anchor=stage1, the SD teacher); λ fixed or matched | l2anchor.py   |

From Python:

    from factbench import recipes
    result = recipes.train("selfdistill", recipes.load_config("toy", ["output_dir=runs/sd"]))
    result.output_dir, result.card["final"]

Reading one recipe top to bottom: its settings are `RecipeConfig` (config.py); runner.py loads
the split and the base model into a `Run`; the recipe's own file (table above) picks its training
examples (examples.py: rows, encoding, packing, collator), its trainable parameters
(parameters.py) and its loss (losses.py for the arithmetic), and trains with the shared loop
(trainer.py, per-epoch evaluation in callbacks.py); runner.py then saves the model and writes the
recipe card (factbench/recipe_cards.py, beside its reader). The table of recipes is `runner.RECIPES`.

Each run writes into `output_dir`: the model and tokenizer (a normal Hugging Face folder),
`training_log.jsonl` (one evaluation row per epoch) and, last, `recipe_card.json`.
"""

from .config import RecipeConfig, bundled_configs, load_config
from .runner import RECIPES, TrainResult, train

__all__ = ["RECIPES", "RecipeConfig", "TrainResult", "bundled_configs", "load_config", "train"]
