"""The question protocol: how every factbench question is asked and graded, and its identity.

One place for the decoding (greedy, at most `MAX_NEW_TOKENS` new tokens, stop at `STOP`), the
prompt (`prompts.PROMPT_VERSION`, `SHOTS` exemplars drawn with `EXEMPLAR_SEED`) and the matching
rule (`matching.MATCHING_VERSION`). Everything that asks a question takes its decoding from
`generation_params()` (factbench's engines) or `generation_kwargs()` (lm-eval's spelling).

Profiles, runs and score cards record the full protocol dict and a short hash of it. Two results
may be compared only when their hashes agree; `explain_mismatch` says which fields differ.
"""

from __future__ import annotations

import hashlib
import json

from .matching import MATCHING_VERSION
from .prompts import DEFAULT_EXEMPLAR_SEED, DEFAULT_SHOTS, PROMPT_VERSION

TASK_VERSION = 1  # bump on any change that alters which answer counts as correct
# The lm-eval tasks' own `metadata.version`: 2.0 changed what the `factforget` group holds (the audit
# set instead of the bundled SmolLM2 split) and added `factforget_audit`; a split task's questions,
# prompts and grading are those of 1.0, so its 1.0 logs still score.
LMEVAL_TASK_VERSION = 2
LMEVAL_COMPATIBLE_VERSIONS = {"factforget_audit": (2,)}  # other tasks: 1 and 2
MAX_NEW_TOKENS = 16
STOP = ("\n",)  # the lm-eval YAMLs' `until` must agree (a test checks)
SHOTS = DEFAULT_SHOTS
EXEMPLAR_SEED = DEFAULT_EXEMPLAR_SEED


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


def question_protocol(*, shots: int = SHOTS, exemplar_seed: int = EXEMPLAR_SEED,
                      max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """How factbench asks and grades questions (now, or under other prompt / length settings)."""
    return base_protocol(shots=shots, exemplar_seed=exemplar_seed, max_new_tokens=max_new_tokens, stop=STOP)


def generation_params(protocol: dict | None = None, **sampling):
    """The protocol's decoding for factbench's engines; `sampling` (temperature, top_k, n, seed) for probes."""
    from .engines.base import GenerationParams  # the engines' interface type only, not an engine

    protocol = protocol or question_protocol()
    return GenerationParams(max_new_tokens=protocol["max_new_tokens"], stop=tuple(protocol["stop"]), **sampling)


def generation_kwargs(protocol: dict | None = None) -> dict:
    """The same decoding spelled as lm-eval's `generation_kwargs` (the YAMLs fix the same values)."""
    protocol = protocol or question_protocol()
    return {"until": list(protocol["stop"]), "max_gen_toks": protocol["max_new_tokens"],
            "do_sample": False, "temperature": 0.0}


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
