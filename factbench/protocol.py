"""Protocol identity: a short hash of everything that changes what a question's answer means.

Profiles, runs and score cards record the full protocol dict and its hash. Two results may be
compared only when their hashes agree; `explain_mismatch` says which fields differ.
"""

from __future__ import annotations

import hashlib
import json

from .answers import MATCHING_VERSION
from .prompts import PROMPT_VERSION

TASK_VERSION = 1  # bump on any change that alters which answer counts as correct


def protocol_hash(protocol: dict) -> str:
    canonical = json.dumps(protocol, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def base_protocol(*, shots: int, exemplar_seed: int, max_new_tokens: int, stop: tuple[str, ...]) -> dict:
    """The fields every factbench result shares: how questions are asked and graded."""
    return {
        "task_version": TASK_VERSION,
        "prompt_version": PROMPT_VERSION,
        "shots": shots,
        "exemplar_seed": exemplar_seed,
        "max_new_tokens": max_new_tokens,
        "stop": list(stop),
        "matching": MATCHING_VERSION,
    }


def explain_mismatch(a: dict, b: dict, names: tuple[str, str] = ("first", "second")) -> str:
    """One line naming the fields on which two protocols differ."""
    keys = sorted(set(a) | set(b))
    diffs = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]
    return f"protocols differ ({names[0]} vs {names[1]}): " + "; ".join(diffs) if diffs else "protocols agree"


def made_under_other_protocol(what: str, made_hash: str | None, made_protocol: dict | None, now: dict,
                              names: tuple[str, str]) -> str:
    """The one refusal for results made under another question protocol: which hashes, which fields."""
    why = f" ({explain_mismatch(made_protocol, now, names)})" if made_protocol else ""
    return (f"{what} was made under question protocol {made_hash}, but this factbench asks questions under "
            f"{protocol_hash(now)}{why}")
