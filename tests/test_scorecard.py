"""The score card (factbench.scorecard): what it records, its schema, and its text (scorecard_render).

The card fixture (conftest) is what `factbench score` writes for scripted base and tuned answers
on the scripted split.
"""

import dataclasses
import json

import pytest
from conftest import SETS, ids, scripted_answers, tuned_right
from test_lmeval_tasks import SPLIT_SETTINGS

from factbench import answer_sources, card_schema, identities, knowledge, protocol, scorecard, splits
from factbench.scorecard_render import render


def test_card_records_identities_hashes_and_compact_outcomes(card, split, scripted):
    assert card["schema"] == "factbench.scorecard/1"
    assert card["protocol_hash"] == split.manifest["protocol_hash"]
    assert card["base"]["source"] == "factbench" and card["base"]["model"]["name"] == "base-model"
    assert card["tuned"]["label"].startswith("tuned-model")
    assert card["base"]["decoding"] == protocol.generation_kwargs()
    assert card["split"]["files"] == split.manifest["files"]
    for name in SETS:
        o = card["outcomes"][name]
        assert sorted(o["ids"]) == sorted(ids(split, name))
        assert card["sets"][name]["ids_sha256"] == identities.ids_sha256(ids(split, name))
        assert o["tuned"] == "".join("1" if i in tuned_right(split) else "0" for i in o["ids"])
    assert card["guessable"]["questions"] == 0 and card["guessable"]["note"].startswith("none")
    assert card["notes"] == []


def test_text_summary_says_what_the_card_says(card, capsys):
    text = render(card)
    assert "retention 66.7% [" in text and "forgetting 33.3% [" in text
    assert "forgotten ÷ acquired: 3 ÷ 19 = 0.158" in text
    assert "the base itself answers 80.0% [" in text
    assert "guessable facts: none" in text


def test_guessable_facts_are_scored_apart(scripted, tmp_path):
    profile_dir = scripted[0]
    settings = dataclasses.replace(SPLIT_SETTINGS, include_guessable=True)
    splits.make_split(knowledge.load_profile(profile_dir), settings, tmp_path / "split")
    split = splits.load_split(tmp_path / "split")
    guessable = {r["id"] for r in knowledge.load_profile(profile_dir).rows if r["guessable"]}
    held = ids(split, "heldout")
    in_heldout = guessable & set(held)
    assert 0 < len(in_heldout) < len(held)  # the scripted profile has some: exemplar copies
    everything = {i for s in SETS for i in ids(split, s)}
    scripted_answers(tmp_path / "base", split, everything)
    scripted_answers(tmp_path / "tuned", split, everything - in_heldout)  # forgets only guessable facts
    card = scorecard.score(answer_sources.read_answers(tmp_path / "base", "base"),
                         answer_sources.read_answers(tmp_path / "tuned", "tuned"), split)
    assert card["sets"]["heldout"]["questions"] == len(held) - len(in_heldout)
    assert card["summary"]["forgetting"]["value"] == 0  # the headline is on recalled facts only
    g = card["guessable"]["sets"]["heldout"]
    assert g["questions"] == len(in_heldout) and g["tuned_accuracy"]["value"] == 0
    assert card["outcomes"]["heldout"]["guessable"].count("1") == len(in_heldout)


def test_card_schema_rejects_broken_cards(card, tmp_path):
    scorecard.validate(card)
    broken = json.loads(json.dumps(card))
    del broken["summary"]["retention"]
    with pytest.raises(scorecard.CardError, match="card.summary: missing 'retention'"):
        scorecard.validate(broken)
    broken = json.loads(json.dumps(card))
    broken["outcomes"]["heldout"]["tuned"] = broken["outcomes"]["heldout"]["tuned"][:-1]
    with pytest.raises(scorecard.CardError, match="one entry per question"):
        scorecard.validate(broken)
    broken = json.loads(json.dumps(card))
    broken["sets"]["new"]["base_accuracy"]["value"] = 1.5
    with pytest.raises(scorecard.CardError, match="above 1"):
        scorecard.validate(broken)
    path = tmp_path / "truncated.json"
    path.write_text(json.dumps(card)[:500])
    with pytest.raises(scorecard.CardError, match="not valid JSON"):
        scorecard.load_card(path)


def test_hand_written_validator_agrees_with_jsonschema(card):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(scorecard.SCHEMA)
    jsonschema.validate(card, scorecard.SCHEMA)
    broken = json.loads(json.dumps(card))
    broken["sets"]["heldout"]["status"] = "maybe"
    assert card_schema.schema_errors(broken, card_schema.SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, scorecard.SCHEMA)


def test_a_local_fine_tune_is_named_by_its_recipe_card(tmp_path):
    (tmp_path / "recipe_card.json").write_text(json.dumps(
        {"recipe": "selfdistill", "config": {"distill_lambda": 0.5, "distill_tau": 2.0, "kl_on": "answer", "seed": 3}}))
    side = answer_sources.Answers("tuned", {"model": {"source": "local", "name": str(tmp_path)}}, {})
    recipe = scorecard._recipe_of(side)
    assert recipe["label"] == "selfdistill (λ=0.5, τ=2, KL on answer tokens)"
    assert recipe["settings"]["seed"] == 3 and recipe["settings"]["distill_lambda"] == 0.5
    assert len(recipe["recipe_card_sha256"]) == 64
    hub = answer_sources.Answers("tuned", {"model": {"source": "hub", "name": str(tmp_path)}}, {})
    assert scorecard._recipe_of(hub) is None  # only a local folder can hold a recipe card


def test_a_fine_tune_without_recipe_card_is_not_said_to_be_trained_on_the_split(card):
    from factbench import scorecard_render

    assert card["training_data"]["trained_on_split"] is None
    text = scorecard_render.render(card)
    assert "factbench cannot know what it was trained on" in text
    assert "new facts trained on" not in text and "the split's Unknown training facts" in text
