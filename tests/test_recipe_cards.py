"""Reading a fine-tune's recipe card (factbench.recipe_cards) for its score card's label."""

import hashlib
import json

from factbench import recipe_cards


def test_describe_labels_each_recipe():
    assert recipe_cards.describe({"recipe": "sft", "config": {"learning_rate": 1e-4}}) == {
        "recipe": "sft", "label": "sft", "settings": dict.fromkeys(recipe_cards.SETTINGS) | {"learning_rate": 1e-4}}
    freeze = recipe_cards.describe({"recipe": "freeze", "config": {}, "trainable": {"trainable": "attention"}})
    assert freeze["label"] == "freeze (trainable=attention)"
    distill = recipe_cards.describe({"recipe": "selfdistill", "config": {"distill_lambda": 0.25, "distill_tau": 1.0,
                                                                           "kl_on": "all"}})
    assert distill["label"] == "selfdistill (λ=0.25, τ=1, KL on all tokens)"
    assert set(recipe_cards.SELFDISTILL_SETTINGS) <= set(distill["settings"])


def test_read_recipe_card_hashes_the_file_and_forgives_nothing_missing(tmp_path):
    assert recipe_cards.read_recipe_card(tmp_path) is None
    path = tmp_path / recipe_cards.RECIPE_CARD
    path.write_text(json.dumps({"recipe": "freeze", "config": {}}))  # freeze without its trainable part
    assert recipe_cards.read_recipe_card(tmp_path) is None
    path.write_text("not json")
    assert recipe_cards.read_recipe_card(tmp_path) is None
    path.write_text(json.dumps({"recipe": "sft", "config": {"seed": 4}}))
    got = recipe_cards.read_recipe_card(tmp_path)
    assert got["recipe_card_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert list(got) == ["recipe", "label", "settings", "recipe_card_sha256", "split_files"]
    assert got["settings"]["seed"] == 4 and got["split_files"] is None


def test_trained_on_split_needs_a_recipe_card_naming_the_split():
    from factbench.recipe_cards import trained_on_split

    files = {"train.jsonl": "a" * 64}
    unknown = trained_on_split(None, files)
    assert unknown["trained_on_split"] is None and "cannot know" in unknown["evidence"]
    assert "factbench audit" in unknown["evidence"]
    recipe = {"recipe_card_sha256": "b" * 64, "split_files": {"train.jsonl": "a" * 64}}
    assert trained_on_split(recipe, files)["trained_on_split"] is True
    other = trained_on_split(recipe | {"split_files": {"train.jsonl": "c" * 64}}, files)
    assert other["trained_on_split"] is False and "another training split" in other["evidence"]


def test_what_the_recipes_write_is_what_score_cards_read(tmp_path, monkeypatch):
    """Writer and reader of the recipe card in one module: a built card round-trips through describe."""
    from types import SimpleNamespace

    config = SimpleNamespace(seed=5, to_dict=lambda: {"distill_lambda": 1.0, "distill_tau": 0.5, "kl_on": "answer",
                                                      "learning_rate": 5e-5, "seed": 5})
    split = SimpleNamespace(path=tmp_path, manifest={"protocol_hash": "p", "files": {"train.jsonl": "a" * 64}})
    run = SimpleNamespace(recipe="selfdistill", config=config, identity={"name": "base"}, split=split,
                          trainable={"trainable": "all"})
    from factbench import splits

    monkeypatch.setattr(splits, "manifest_sha256", lambda s: "m" * 64)  # the fake split has no manifest file
    built = recipe_cards.build(run, stages=[], training_log=[{"epoch": 1, "heldout_accuracy": 0.9}], wall_seconds=1.0)
    recipe_cards.write(built, tmp_path)
    read = recipe_cards.read_recipe_card(tmp_path)
    assert read["label"] == "selfdistill (λ=1, τ=0.5, KL on answer tokens)" and read["settings"]["seed"] == 5
    assert read["split_files"] == {"train.jsonl": "a" * 64}
    assert recipe_cards.trained_on_split(read, {"train.jsonl": "a" * 64})["trained_on_split"] is True
