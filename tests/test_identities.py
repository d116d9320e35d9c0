"""Identities of question sets, answers, models and splits (factbench.identities)."""

import hashlib

from factbench import identities


def test_ids_sha256_is_order_free_and_one_id_per_line():
    ids = ["P17/test/2", "P17/test/10", "P19/dev/1"]
    assert identities.ids_sha256(ids) == identities.ids_sha256(reversed(ids))
    assert identities.ids_sha256(ids) == hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    assert identities.ids_sha256(ids) != identities.ids_sha256(ids[:2])


def test_id_order_is_numeric():
    ids = ["P19/test/1", "P17/test/10", "P17/test/2", "P106/dev/0"]
    assert sorted(ids, key=identities.id_order) == ["P17/test/2", "P17/test/10", "P19/test/1", "P106/dev/0"]


def test_answers_sha256_changes_with_any_completion():
    sets = {"heldout": {"P17/test/1": {"completion": "Poland"}, "P17/test/2": {"completion": "France"}},
            "new": {"P19/test/1": {"completion": "Paris"}}}
    again = {"new": dict(sets["new"]), "heldout": dict(reversed(list(sets["heldout"].items())))}
    assert identities.answers_sha256(again) == identities.answers_sha256(sets)
    edited = {**sets, "new": {"P19/test/1": {"completion": "Lyon"}}}
    assert identities.answers_sha256(edited) != identities.answers_sha256(sets)


def test_model_key_prefers_content_then_hub_sha_then_name():
    assert identities.model_key({"model": {"content_sha256": "ab", "sha": "cd", "name": "m"}}) == "sha256:ab"
    assert identities.model_key({"model": {"sha": "cd", "name": "m"}}) == "hub-sha:cd"
    assert identities.model_key({"model": {"name": "m", "revision": "v2"}}) == "m@v2"
    assert identities.model_key({"model": {"name": "m"}}) == "m@main"
    assert identities.model_key({"model": None}) is None


def test_label_names_the_model_and_how_it_ran():
    assert identities.label({"model": {"name": "m"}, "engine": {"engine": "hf", "dtype": "float32"}}) == "m (hf float32)"
    assert identities.label({"model": None, "answers": "/a", "engine": None}) == "/a"
    assert identities.label({}) == "unknown model"


def test_split_identity_records_the_split(split):
    got = identities.split_identity(split)
    assert got["path"] == str(split.path) and got["files"] == split.manifest["files"]
    assert got["profile_sha256"] == split.manifest["profile"]["profile_sha256"]
    assert got["include_guessable"] is False
