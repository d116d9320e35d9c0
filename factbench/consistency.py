"""Whether two sides' answers can be scored together, refused with one line naming the difference.

Both sides answered the same questions of each set, all of them in the split's set (answers from
another split are refused); every prompt is the prompt this factbench builds for that fact (same
prompt version, exemplars, shots), the same for base and tuned (`prompt_hash`); decoding is the
protocol's (greedy, at most 16 new tokens, stop at newline); the logged grades are what this
factbench's matching gives the logged completion.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from . import data, matching, prompts, question_sets
from .errors import ScoreError
from .identities import id_order
from .protocol import generation_kwargs

if TYPE_CHECKING:
    from .answer_sources import Answers
    from .splits import Split

SETS = question_sets.SPLIT_SETS  # heldout, new, known_train, ood


def check_decoding(kwargs: dict, what: str) -> None:
    """The logged generation arguments are the question protocol's: its stop strings and length, greedy."""
    want = generation_kwargs()
    problems = []
    if list(kwargs.get("until") or []) != want["until"]:
        problems.append(f"stop strings {kwargs.get('until')!r} (want {want['until']!r})")
    if kwargs.get("max_gen_toks", want["max_gen_toks"]) != want["max_gen_toks"]:
        problems.append(f"max_gen_toks {kwargs.get('max_gen_toks')} (want {want['max_gen_toks']})")
    if kwargs.get("do_sample") or (kwargs.get("temperature") or 0) > 0:
        problems.append(f"sampling (do_sample={kwargs.get('do_sample')}, temperature={kwargs.get('temperature')}; "
                        "want greedy)")
    if problems:
        raise ScoreError(f"{what} were not decoded under the question protocol: {'; '.join(problems)}")


def check_side_questions(side: Answers, split: Split) -> None:
    """Every answered question is in the split's set of that name."""
    for name, got in side.sets.items():
        in_split = {r["id"] for r in question_sets.set_rows(name, split)}
        foreign = sorted(set(got) - in_split, key=id_order)
        if foreign:
            raise ScoreError(f"{len(foreign)} of the {side.role} model's {len(got)} {name} answers are to questions "
                             f"not in that set of split {split.path} (e.g. {foreign[0]}): they were asked on another "
                             "split; pass that split with --split")


def check_side(side: Answers, split: Split) -> None:
    """One side alone: its questions are the split's, its prompts and grades this factbench's."""
    check_side_questions(side, split)
    for got in side.sets.values():
        for fact in data.get(sorted(got, key=id_order)):
            answer = got[fact.id]
            if answer["prompt_hash"] != _prompt_hash(fact):
                raise ScoreError(f"the {side.role} answers' prompt for {fact.id} is not the prompt this factbench "
                                 "asks (another prompt version, exemplar seed or number of shots)")
            check_grade(side.role, fact.id, answer, fact.answers)


def _prompt_hash(fact) -> str:
    return hashlib.sha256(prompts.build_prompt(fact, 0).encode()).hexdigest()


def check_answers(base: Answers, tuned: Answers, split: Split) -> dict[str, str]:
    """Refuse mismatched answers; return each set's status ("scored" or why not).

    Checks run from the broadest cause to the narrowest, so the message names the real one:
    another split, then different questions, then base and tuned prompts, then this factbench's.
    """
    status = {}
    for name in SETS:
        in_split = question_sets.set_rows(name, split)
        has = (name in base.sets, name in tuned.sets)
        if not in_split:
            status[name] = "not in split"
        elif has == (False, False):
            status[name] = "not answered"
        elif not all(has):
            status[name] = f"only {'base' if has[0] else 'tuned'} answered"
        else:
            status[name] = "scored"
    if status["heldout"] == "not in split":
        raise ScoreError(f"split {split.path} has no held-out questions: there is nothing to score")
    if status["heldout"] != "scored":
        missing = " and ".join(s.role for s in (base, tuned) if "heldout" not in s.sets)
        raise ScoreError(f"no held-out answers (samples_factforget_heldout*.jsonl) from the {missing} model; "
                         "score needs held-out answers from both")
    for side in (base, tuned):
        check_side_questions(side, split)
    for name in (n for n in SETS if status[n] == "scored"):
        b, t = base.sets[name], tuned.sets[name]
        if set(b) != set(t):
            only_b, only_t = sorted(set(b) - set(t)), sorted(set(t) - set(b))
            raise ScoreError(f"base and tuned answered different {name} questions ({len(b)} vs {len(t)}; "
                             f"{len(only_b)} only in base, {len(only_t)} only in tuned, e.g. {(only_b or only_t)[0]}): "
                             "answer both on the same questions (same split, same --limit)")
        for fid in sorted(b, key=id_order):
            if b[fid]["prompt_hash"] != t[fid]["prompt_hash"]:
                raise ScoreError(f"base and tuned saw different prompts for {fid} (prompt_hash "
                                 f"{b[fid]['prompt_hash'][:12]} vs {t[fid]['prompt_hash'][:12]}): they were asked "
                                 "under different question protocols")
    for side in (base, tuned):
        check_side(side, split)
    return status


def check_grade(role: str, fid: str, got: dict, gold, error: type[Exception] = ScoreError) -> None:
    """The logged grades are what this factbench's matching gives the logged completion (score and audit)."""
    em, contains = matching.exact_match(got["completion"], gold), matching.contains(got["completion"], gold)
    if (em, contains) != (got["em"], got["contains"]):
        raise error(f"the {role} answer to {fid} ({got['completion']!r}) was graded em={got['em']:d} "
                         f"contains={got['contains']:d}, but this factbench grades it em={em:d} "
                         f"contains={contains:d} (matching rule {matching.MATCHING_VERSION}): graded under "
                         "another matching rule, or edited")
