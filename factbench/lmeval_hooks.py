"""The functions the factforget lm-eval tasks call (`!function factbench.lmeval_hooks.<name>`).

They live in the installed package, not next to the YAMLs, so the tasks work wherever the YAML
folder is (repo, `lm_eval/tasks/factforget/` from the wheel, an `--include_path`): lm-eval
resolves `!function a.b.c` first as `a/b.py` beside the YAML, then as an importable module.
Everything about which questions a task asks is in `factbench.question_sets`.
"""

from __future__ import annotations

from . import matching, prompts, question_sets
from .protocol import STOP


def load_docs(question_set: str, split: str | None = None, profile: str | None = None, **ignored):
    """lm-eval's `custom_dataset`: {"test": Dataset} of one question set.

    lm-eval calls it with the task's `dataset_kwargs` (here `question_set`) plus every key of the
    task metadata, which merges the YAML `metadata`, `--metadata` and `--model_args`: so `split` or
    `profile` come from `--metadata '{"split": DIR}'` and everything else is ignored.
    """
    import datasets

    split_ = None if question_set == "pool" else question_sets.find_split(
        split, profile, split_flag='--metadata "split"', profile_flag='--metadata "profile"')
    return {"test": datasets.Dataset.from_list(question_sets.docs(question_set, split_))}


def doc_to_text(doc: dict) -> str:
    """Exactly the probe's 4-shot prompt 0 for the fact, ending in "A:"."""
    return prompts.build_prompt(question_sets.fact_of(doc), 0)


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Normalised exact match (primary) and containment, as factbench grades every answer."""
    completion = matching.cut_at_stop(results[0], STOP)
    return {"em": float(matching.exact_match(completion, doc["answers"])),
            "contains": float(matching.contains(completion, doc["answers"]))}
