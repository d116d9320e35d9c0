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

    if question_set != "pool" and not (split or profile):
        # Since task version 2.0: no silent default, which measured SmolLM2's split for every model.
        raise question_sets.QuestionSetError(
            f"factforget_{question_set} asks the questions of a factbench split: pass --metadata '{{\"split\": DIR}}' "
            f"or '{{\"profile\": DIR}}' ('{{\"split\": \"{question_sets.BUNDLED_SPLIT}\"}}' is the bundled SmolLM2-135M "
            "split); to audit any fine-tune without a split, run --tasks factforget_audit")
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


# ---- the audit task (factforget_audit) -----------------------------------------------------------

def load_audit_docs(preset: str = "small", prompts: int | None = None, trained_on: str | None = None, **ignored):
    """lm-eval's `custom_dataset` of `factforget_audit`: every audit question under every prompt.

    `--metadata` keys: `preset` (small / standard / full), `prompts` (ask only prompts 0..N-1; 1 is
    enough for a fine-tune, the base needs the preset's K), `trained_on` (a training file: its
    questions are asked too, under prompt 0, for acquisition).
    """
    import datasets

    from .auditing import questions
    from .auditing import trained_on as training_data

    docs = questions.docs(preset, prompts)
    if trained_on:
        docs += training_data.docs(training_data.read(trained_on), f"{questions.AUDIT_VERSION}/{preset}")
    return {"test": datasets.Dataset.from_list(docs)}


def audit_doc_to_text(doc: dict) -> str:
    """The probe's 4-shot prompt `doc["prompt_index"]` for an audit fact; prompt 0 for a training question."""
    from .auditing.answers import prompt_of

    return prompt_of(doc)
