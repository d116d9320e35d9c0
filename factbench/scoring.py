"""`factbench score`: a fine-tuned checkpoint against its base, fact by fact (METHOD.md §3 metrics).

The whole command, in the order that fails fastest: the split, the training log, each side (an
answers folder is read and checked, a model spec only resolved) before any model runs, then the
models that must answer, then the card. Where the pieces live:

- `factbench.answer_sources`: where a side's answers come from (lm-eval or factbench folders, or a
  model run through factbench's engine);
- `factbench.consistency`: the checks that refuse answers that cannot be scored together;
- `factbench.metrics`: flips, accuracies and their bootstrap intervals;
- `factbench.training_log`: the recipes' per-epoch log (peak-relative forgetting);
- `factbench.scorecard`: the card's assembly, schema and files (`scorecard_render`: its text).
"""

from __future__ import annotations

from pathlib import Path

from . import answer_sources, question_sets
from .consistency import check_side
from .errors import FactbenchError
from .metrics import DEFAULT_BOOTSTRAP, Bootstrap
from .scorecard import score
from .training_log import read_training_log


def score_fine_tune(base: str, tuned: str, *, split: str | None = None, training_log: Path | str | None = None,
                    boot: Bootstrap = DEFAULT_BOOTSTRAP, engine: str = "hf", dtype: str = "auto",
                    batch_size: int | None = None, limit: int | None = None, save_answers: Path | None = None,
                    base_revision: str | None = None, tuned_revision: str | None = None, echo=print) -> dict:
    """The score card of `tuned` against `base` (each an answers folder or a model spec) on `split`."""
    the_split = question_sets.find_split(split, split_flag="--split")
    if training_log:
        read_training_log(training_log)  # a bad log fails before any model runs
    wanted = {"base": (base, base_revision), "tuned": (tuned, tuned_revision)}
    sides, models_to_run = {}, []
    for role, (where, revision) in wanted.items():
        if answer_sources.is_answers_folder(where):
            sides[role] = answer_sources.read_answers(where, role)
        else:
            answer_sources.check_model_spec(where, role, revision)
            models_to_run.append(role)
    if not models_to_run and (limit is not None or save_answers):
        raise FactbenchError("--limit and --save-answers apply only when --base or --tuned is a model")
    if models_to_run:  # a folder that cannot be scored fails before any model runs
        for side in sides.values():
            check_side(side, the_split)
    if save_answers:
        for role in models_to_run:
            if (save_answers / role).exists() and any((save_answers / role).iterdir()):
                raise FactbenchError(f"--save-answers {save_answers / role} already holds files; choose another")
    for role in models_to_run:
        where, revision = wanted[role]
        sides[role] = answer_sources.answer_with_model(
            where, role, the_split, engine=engine, revision=revision, dtype=dtype, batch_size=batch_size,
            limit=limit, same_questions_as=sides.get("tuned" if role == "base" else "base"),
            save_to=save_answers / role if save_answers else None, echo=echo)
    return score(sides["base"], sides["tuned"], the_split, training_log=training_log, boot=boot)
