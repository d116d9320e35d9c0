"""A toy world's split (`split_dir: toy[:PRESET]`), so the recipes run end to end offline.

A toy world knows the facts it was pre-trained on and none of its held-back ones (world.py).
Its split comes from a knowledge profile like any other, but a cheap one: each fact is asked
once, greedy, under the evaluation prompt (4-shot, prompt 0), so

- **known** = pre-trained facts the world answers right (HighlyKnown under one prompt);
- **Unknown** = held-back facts it answers wrong.

That one-prompt labelling is good enough here because the world's knowledge is decided by
construction; it would not be for a real model (METHOD.md §2). The split is then drawn by
`factbench.splits.make_split` with the usual rules (subject-disjoint held-out set) and sizes that
fit the world: at most 800 known + 500 Unknown training facts and 500 held-out facts (about the
scale of the small reimplementation of METHOD.md §7). Splits are cached by world, sizes and
question protocol.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import matching, prompts, splits
from ..errors import FactbenchError
from ..files import atomic_path, cache_dir
from ..knowledge import Profile
from ..protocol import generation_params, protocol_hash, question_protocol
from .build import toy_world
from .world import ToyWorld, ToyWorldConfig

MAX_KNOWN, MAX_UNKNOWN, MAX_HELDOUT = 800, 500, 500


def toy_split(preset: str = "default") -> Path:
    """The split folder of the toy world `preset`, built (world and split) on first use."""
    world = toy_world(ToyWorldConfig.preset(preset))
    protocol = protocol_hash(question_protocol())
    key = json.dumps({"world": world.config.hash(), "protocol": protocol, "split_schema": splits.SPLIT_SCHEMA,
                      "sizes": [MAX_KNOWN, MAX_UNKNOWN, MAX_HELDOUT]}, sort_keys=True)
    out = cache_dir() / "splits" / f"toy-{preset}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (out / "manifest.json").is_file():
        try:
            splits.load_split(out)  # checks every file against the manifest
            return out
        except (FactbenchError, ValueError, OSError):
            pass  # a damaged cached split: made again (it is deterministic), replacing it once complete
    rows = label_facts(world)
    known = sum(r["known"] for r in rows)
    unknown = sum(r["category"] == "Unknown" for r in rows)
    labelling = {"labels": "toy world: 1 greedy answer per fact, 4-shot prompt 0", "world": world.config.hash(),
                 "questions": question_protocol()}
    manifest = {"protocol_hash": protocol, "profile_sha256": hashlib.sha256(json.dumps(rows).encode()).hexdigest(),
                "model": {"source": "toy", "name": f"toy:{preset}", "config_hash": world.config.hash()},
                "probe_protocol_hash": protocol_hash(labelling)}
    profile = Profile(path=world.model_dir, manifest=manifest, rows=rows)
    # A held-out third of the known facts, the rest (up to the caps) for training; the slack leaves
    # room for the subject-disjointness rules.
    settings = splits.SplitSettings(known=min(MAX_KNOWN, known // 2), unknown=min(MAX_UNKNOWN, unknown * 5 // 6),
                                    heldout=min(MAX_HELDOUT, known // 3), ood=0, min_known_share=0.0)
    # Made beside its place and moved in whole: an interrupted run leaves nothing that looks made.
    with atomic_path(out) as tmp:
        splits.make_split(profile, settings, tmp)
    return out


def label_facts(world: ToyWorld) -> list[dict]:
    """Profile rows of every fact of the world, from one greedy answer per fact."""
    from ..engines import engine_for

    params = generation_params()
    loaded = world.load()
    engine = engine_for(loaded.model, loaded.tokenizer, dtype="float32", device="cpu")
    facts = world.known + world.unknown
    completions = engine.generate([prompts.build_prompt(f, 0) for f in facts], params)
    pre_trained = set(world.known_ids)
    rows = []
    for fact, completion in zip(facts, completions, strict=True):
        right = matching.exact_match(completion[0], fact.answers)
        if fact.id in pre_trained:
            category = "HighlyKnown" if right else "MaybeKnown"  # MaybeKnown: neither train set takes it
        else:
            category = "WeaklyKnown" if right else "Unknown"
        rows.append({"id": fact.id, "relation": fact.relation, "category": category,
                     "known": category == "HighlyKnown"})
    return rows
