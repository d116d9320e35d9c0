"""`factbench interference`: the semantic-overlap probe (METHOD.md §5).

Does fine-tuning on new facts make a model forget facts it knew *because the new facts' subjects
look like entities it knows*? The probe fine-tunes the base model on synthetic facts of one
relation (factbench.synthetic) whose subjects are either **name-like** (recombined tokens of real
place names) or **UUID strings**, at several sizes and with several recipes, and measures on the
facts the base model knew:

- **forgetting**: base accuracy − fine-tuned accuracy on them (greedy 4-shot, the question
  protocol of every factbench score), a paired bootstrap 95% interval over the facts;
- **drift**: 1 − cos of each fact's subject representation at a middle layer, base vs fine-tuned
  (factbench.representations), mean and bootstrap 95% interval;
- **learned**: accuracy on (up to `new_limit` of) the synthetic facts trained on, under the same
  4-shot protocol, so that a recipe that forgets nothing because it learned nothing shows as such.

The paper reports name-like keys forgetting 38–41% of held-out known facts at 10⁶ facts and UUID
keys 0–4%, with drift rising with name-like keys; this command measures the same contrast at
whatever scale the machine allows, and says how large the difference is (name-like − UUID, paired
over the same facts).

**The known facts** are every fact of the base model's split it knew: `heldout.jsonl`, the Known
rows of `train.jsonl` and `ood.jsonl` (here nothing trains on any of them; the training data is
the synthetic facts alone). `heldout_limit` takes a seeded sample.

**Training** is `factbench.recipes.train` with a bundled config (`toy` for toy worlds,
`smollm2_demo` otherwise) and these settings on top: the synthetic split as `split_dir`, held-out
evaluation only at the end (per-epoch evaluation is opt-in: `eval_each_epoch=true`), and

- `selfdistill`: `teacher=base`, the base model as the frozen teacher, because the training data
  holds no Known facts for a stage-1 teacher to learn the answer format from; **[ours]**
- toy worlds: `answer_end=newline`, because a toy world never saw eos after an answer and learning
  it costs held-out accuracy whatever the keys (recipes/config.py). **[ours]**

Anything else is a `KEY=VALUE` override (`overrides`). `known-only` has nothing to train on here.

**Output folder**: `settings.json` (what fixes the results), `facts/<keys>-<size>/` (the synthetic
split folders, with manifest and checksums), `base.json` (the base model's answers),
`runs/<recipe>-<keys>-<size>/` (`result.json`, written last, plus the recipe's training log and
card; the weights are deleted after measuring unless `keep_models`), and the summary:
`interference.json` (every number with n and interval, the settings and the command),
`interference.md` and `interference.png`. A rerun with the same settings reuses every finished
condition and runs only the missing ones; other settings in the same folder are refused.

The code: experiment.py (the settings, their identity and checks, the condition names),
conditions.py (`run`: each condition trained and measured; named so, not run.py, because the
package's `run` is that function), report.py (`summarize`, `render`, `plot_png`).
"""

from .conditions import measure, run, write_fact_split
from .experiment import (
    DEFAULT_NEW_LIMIT,
    DEFAULT_SIZES,
    RECIPE_LABELS,
    SCHEMA,
    Experiment,
    base_split,
    condition_name,
    identity,
    known_rows,
    with_command,
)
from .report import condition_summary, plot_png, render, summarize

__all__ = [
    "DEFAULT_NEW_LIMIT", "DEFAULT_SIZES", "RECIPE_LABELS", "SCHEMA", "Experiment", "base_split", "condition_name",
    "condition_summary", "identity", "known_rows", "measure", "plot_png", "render", "run", "summarize",
    "with_command", "write_fact_split",
]
