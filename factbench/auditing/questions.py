"""The audit question set: fixed, versioned, the same for every model.

An audit asks a base model and a fine-tune of it the same EntityQuestions questions, drawn from
the **test** split (probes and splits draw from the train split, so no audit question is ever in
a factbench training set). The draw is deterministic: per relation, a seeded sample of the rows
whose question string is unique in the split (a question shared by several subjects has more
than one true answer set), in file order. Every one of the 24 relations is in it.

| preset     | questions per relation | base prompts (K) | questions |
|------------|------------------------|------------------|-----------|
| `small`    | 50                     | 4                | 1,200     |
| `standard` | 250 (fewer where a relation has fewer) | 10   | 5,971     |
| `full`     | every usable test row  | 10               | 22,001    |
| `tiny`     | 5                      | 2                | 120       |

The draw is a knowledge-profile pool (`factbench.knowledge.Pool`, test split, seed `AUDIT_SEED`),
so the base's side of an audit is a knowledge profile of those questions: greedy answers under
K prompts and the guess evidence, made by the same probe code (`factbench.auditing.base`).

The base is asked under K 4-shot prompts (prompt indices 0..K-1, exemplars from the dev split of
the question's relation, as the probe asks), the fine-tune under prompt 0 only. `small` fits a
laptop CPU (4,800 base answers, 1,200 fine-tune answers); `standard` and `full` use Gekhman's
10 prompts and are meant for GPUs; `tiny` is for tests and trials only (2 prompts make
"recalled" a weak label). Changing a preset's rows or K changes `AUDIT_VERSION`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from .. import data
from ..data import Fact
from ..errors import FactbenchError
from ..knowledge import Pool

AUDIT_VERSION = "audit-1"
AUDIT_SPLIT = "test"
AUDIT_SEED = 2604  # part of AUDIT_VERSION: another seed is another question set
EVERY_ROW = 10**9
TUNED_PROMPTS = (0,)  # a fine-tune is asked under prompt 0 only


@dataclass(frozen=True)
class Preset:
    name: str
    per_relation: int | None  # None = every usable row
    prompts: int  # K: prompts the base is asked under
    purpose: str


PRESETS = {
    "small": Preset("small", 50, 4, "CPUs: 1,200 questions, the base under 4 prompts"),
    "standard": Preset("standard", 250, 10, "GPUs: 6,000 questions, the base under Gekhman's 10 prompts"),
    "full": Preset("full", None, 10, "every usable test row, the base under 10 prompts"),
    "tiny": Preset("tiny", 5, 2, "tests and trials only: 120 questions, the base under 2 prompts"),
}
DEFAULT_PRESET = "small"


class AuditError(FactbenchError):
    """Audit inputs that cannot be audited together (one line, exit code 2)."""


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise AuditError(f"unknown audit preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def pool(name: str = DEFAULT_PRESET) -> Pool:
    """The preset as a probe pool: every relation, the test split, `per_relation` rows of each."""
    p = preset(name)
    return Pool(relations=tuple(data.check_relations(None)), per_relation=p.per_relation or EVERY_ROW,
                split=AUDIT_SPLIT, seed=AUDIT_SEED)


@lru_cache(maxsize=8)
def _facts(name: str) -> tuple[Fact, ...]:
    return tuple(pool(name).facts())


def facts(name: str = DEFAULT_PRESET) -> list[Fact]:
    """The audit questions of a preset, relation by relation (relation order of `data`), in file order."""
    return list(_facts(name))


def ids_sha256(name: str = DEFAULT_PRESET) -> str:
    """Identity of a preset's question set: sha256 of its ids in set order, one per line."""
    return hashlib.sha256("\n".join(f.id for f in _facts(name)).encode()).hexdigest()


def identity(name: str = DEFAULT_PRESET) -> dict:
    """What an audit card and an answers folder record about the question set."""
    p = preset(name)
    rows = _facts(name)
    return {"version": AUDIT_VERSION, "preset": p.name, "split": AUDIT_SPLIT, "questions": len(rows),
            "relations": len({f.relation for f in rows}), "per_relation": p.per_relation,
            "base_prompts": p.prompts, "tuned_prompts": list(TUNED_PROMPTS), "ids_sha256": ids_sha256(name)}


def docs(name: str = DEFAULT_PRESET, prompts: int | None = None) -> list[dict]:
    """One document per (question, prompt index): what the lm-eval task logs and factbench writes.

    `prompts` (default: the preset's K) limits the prompt indices to 0..prompts-1; 1 is enough
    for a fine-tune.
    """
    p = preset(name)
    k = p.prompts if prompts is None else int(prompts)
    if not 1 <= k <= p.prompts:
        raise AuditError(f"prompts must be between 1 and the {p.name} preset's {p.prompts}, got {prompts}")
    return [doc(f, i, p.name) for f in _facts(name) for i in range(k)]


def doc(fact: Fact, prompt_index: int, preset_name: str) -> dict:
    """`id` is the fact id and `prompt_index` the prompt: together the key both answer sources join on."""
    # `trained_on` (the training file's sha256 on training questions) is in every doc: lm-eval's dataset
    # takes its columns from the first row, and would drop a key only later rows have.
    return {"id": fact.id, "prompt_index": prompt_index, "relation": fact.relation, "subject": fact.subject,
            "question": fact.question, "answers": list(fact.answers), "audit": f"{AUDIT_VERSION}/{preset_name}",
            "trained_on": None}
