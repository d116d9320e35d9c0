"""Identities: the short hashes and names that say what was scored, and whether two things match.

Pure functions on ids, answers and card sides; nothing here runs or loads a model, so score
cards, comparisons and the leaderboard can use them on JSON alone.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .splits import Split


def ids_sha256(ids) -> str:
    """The identity of a question set: sha256 of its sorted fact ids, one per line."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def id_order(fid: str) -> tuple:
    """Fact ids (`P17/test/3`) in relation, split and index order."""
    relation, split, index = fid.split("/")
    return int(relation[1:]), split, int(index)


def answers_sha256(sets: dict[str, dict[str, dict]]) -> str:
    """The identity of one side's answers: sha256 over every set, fact id and completion."""
    digest = hashlib.sha256()
    for name in sorted(sets):
        for fid in sorted(sets[name]):
            digest.update(f"{name}\t{fid}\t{sets[name][fid]['completion']}\n".encode())
    return digest.hexdigest()


def label(identity: dict) -> str:
    """A short human name for a side: the model's name, and how it was run."""
    model = identity.get("model") or {}
    name = model.get("name") or identity.get("answers") or "unknown model"
    engine = identity.get("engine") or {}
    how = " ".join(str(x) for x in (engine.get("engine"), engine.get("dtype")) if x)
    return f"{name} ({how})" if how else str(name)


def model_key(side: dict) -> str | None:
    """What makes two sides the same model: content hash when known, else name and revision."""
    model = side.get("model") or {}
    if model.get("content_sha256"):
        return f"sha256:{model['content_sha256']}"
    if model.get("sha"):
        return f"hub-sha:{model['sha']}"
    if model.get("name"):
        return f"{model['name']}@{model.get('revision') or 'main'}"
    return None


def split_identity(split: Split) -> dict:
    """What a card records of the split it was scored on: path, protocol, file and profile checksums."""
    m = split.manifest
    return {"path": str(split.path), "protocol_hash": m.get("protocol_hash"), "files": m.get("files"),
            "profile_sha256": (m.get("profile") or {}).get("profile_sha256"),
            "profile_model": (m.get("profile") or {}).get("model"),
            "include_guessable": bool((m.get("settings") or {}).get("include_guessable"))}
