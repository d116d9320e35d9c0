"""The semantic-overlap probe: synthetic facts, subject representations and drift, and
`factbench interference` end to end on the tiny toy world (whose relations are P69 and P800, so the
end-to-end runs use --relation P69; P17 is the default and is tested on the data alone)."""

import json
import re

import pytest
import torch

from factbench import data, representations, synthetic
from factbench.cli import main

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def p17_subject_words() -> set[str]:
    return {w for s in data.SPLITS for f in data.load(s, ["P17"]) for w in f.subject.split()}


# ---- synthetic facts ----------------------------------------------------------------------------

def test_generation_is_deterministic_and_shorter_lists_are_prefixes():
    a = synthetic.generate("namelike", 40, seed=3)
    assert a == synthetic.generate("namelike", 40, seed=3)
    assert a.facts[:15] == synthetic.generate("namelike", 15, seed=3).facts
    assert [f.subject for f in a.facts] != [f.subject for f in synthetic.generate("namelike", 40, seed=4).facts]
    u = synthetic.generate("uuid", 40, seed=3)
    assert u.facts[:15] == synthetic.generate("uuid", 15, seed=3).facts


def test_name_like_subjects_recombine_real_p17_words_and_are_never_real_subjects():
    facts = synthetic.generate("namelike", 300, seed=0).facts
    words, real = p17_subject_words(), synthetic.real_subjects()
    subjects = [f.subject for f in facts]
    assert len(set(subjects)) == len(subjects)
    for s in subjects:
        parts = s.split()
        assert synthetic.MIN_WORDS <= len(parts) <= synthetic.MAX_WORDS
        assert set(parts) <= words
        assert s not in real


def test_uuid_keys_are_uuid4_strings_and_both_kinds_share_answers():
    names, uuids = synthetic.generate("namelike", 50, seed=1), synthetic.generate("uuid", 50, seed=1)
    assert all(UUID4.fullmatch(f.subject) for f in uuids.facts)
    assert [f.answers for f in names.facts] == [f.answers for f in uuids.facts]
    real_answers = {f.answers[0] for f in data.load("train", ["P17"])}
    assert {f.answers[0] for f in uuids.facts} <= real_answers
    assert len({f.answers[0] for f in uuids.facts}) > 5  # drawn from the distribution, not one country


def test_questions_follow_the_relation_template_exactly():
    template = data.RELATIONS["P17"][1]
    for kind in synthetic.KEY_KINDS:
        for f in synthetic.generate(kind, 20).facts:
            assert f.question == template.replace("[X]", f.subject)
            assert data.subject_of(f.question, template) == f.subject
            assert f.id.startswith(f"P17/synthetic-{kind}/")


def test_word_level_tokenizer_gets_spelled_uuid_keys_without_unknown_tokens(tiny_world):
    tok = tiny_world.load_tokenizer()
    spelling = synthetic.key_spelling(tok)
    assert spelling["form"] == "spaced" and len(set(spelling["symbols"])) == 16
    facts = synthetic.generate("uuid", 20, relation="P69", tokenizer=tok).facts
    for f in facts:
        ids = tok(f.question).input_ids
        assert tok.unk_token_id not in ids
        symbols = f.subject.replace(" - ", " ").split(" ")
        assert len(symbols) == 32 and set("".join(symbols)) <= set(spelling["symbols"])
    names = synthetic.generate("namelike", 20, relation="P69", tokenizer=tok).facts
    assert all(tok.unk_token_id not in tok(f.question + " " + f.answers[0]).input_ids for f in names)


def test_bad_kind_and_size_are_clear_errors():
    with pytest.raises(Exception, match="unknown key kind"):
        synthetic.generate("guid", 3)
    with pytest.raises(Exception, match="at least 1"):
        synthetic.generate("uuid", 0)


# ---- representations and drift ------------------------------------------------------------------

def test_subject_tokens_are_exactly_the_subject(tiny_world):
    tok = tiny_world.load_tokenizer()
    fact = tiny_world.known[0]
    text, span = representations.text_and_span(fact.question, fact.subject)
    assert text[span[0]:span[1]] == fact.subject
    ids, (a, b) = representations._encode(tok, text, span)
    assert tok.decode(ids[a:b]) == fact.subject


def test_drift_is_zero_for_an_unchanged_model_and_positive_after_a_training_step(tiny_world):
    model, tok = tiny_world.load_model(), tiny_world.load_tokenizer()
    items = [(f.question, f.subject) for f in tiny_world.known[:12]]
    before = representations.subject_states(model, tok, items, batch_size=5)
    assert before.shape == (12, model.config.n_embd)
    assert max(representations.drift(before, representations.subject_states(model, tok, items))) < 1e-6

    new = synthetic.generate("namelike", 8, relation="P69", tokenizer=tok).facts
    batch = tok([f"Q: {f.question}\nA: {f.answers[0]}" for f in new], return_tensors="pt", padding=True)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    model(**batch, labels=labels).loss.backward()
    optimizer.step()
    after = representations.drift(before, representations.subject_states(model, tok, items))
    assert min(after) > 1e-5


def test_layer_outside_the_model_is_an_error(tiny_world):
    with pytest.raises(Exception, match="layer 9 does not exist"):
        representations.check_layer(tiny_world.load_model(), 9)


# ---- factbench interference ---------------------------------------------------------------------

BASE_ARGS = ["interference", "--model", "toy:tiny", "--relation", "P69", "--epochs", "1", "--heldout", "24",
             "--new-limit", "6", "--set", "disable_tqdm=true"]


def test_interference_writes_table_json_plot_and_reuses_finished_conditions(tiny_world, tmp_path, capsys):
    out = tmp_path / "probe"
    argv = [*BASE_ARGS, "--recipe", "sft", "selfdistill", "--sizes", "4", "8", "--out", str(out)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.count("training ...") == 8
    summary = json.loads((out / "interference.json").read_text())
    assert len(summary["conditions"]) == 8 and summary["base"]["known_facts"] == 24
    for row in summary["conditions"]:
        for metric in ("forgetting", "drift", "learned", "heldout_accuracy"):
            assert set(row[metric]) == {"value", "low", "high", "n"}
        assert row["forgetting"]["n"] == 24 and row["learned"]["n"] == min(6, row["size"])
        assert row["drift"]["value"] > 0  # every condition trained, so every subject moved a little
        assert row["majority_answer"]["n"] == row["learned"]["n"] and 0 < row["majority_answer"]["share"] <= 1
        assert row["drift"]["low"] <= row["drift"]["value"] <= row["drift"]["high"]
    assert len(summary["name_like_minus_uuid"]) == 4
    assert summary["command"].startswith("factbench interference --model toy:tiny --recipe sft selfdistill")
    table = (out / "interference.md").read_text()
    assert "| SFT | name-like | 4 |" in table and "| self-distillation | UUID | 8 |" in table
    assert summary["command"] in table
    assert (out / "interference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "facts" / "uuid-8" / "manifest.json").read_text())
    assert manifest["kind"] == "factbench split" and manifest["counts"] == {"train": 8, "heldout": 24, "ood": 0}
    assert not list((out / "runs").rglob("*.safetensors"))  # weights deleted once measured
    assert (out / "runs" / "sft-uuid-8" / "model" / "recipe_card.json").is_file()
    # self-distillation trained without Known facts: the base model is its teacher, there is no stage 1
    card = json.loads((out / "runs" / "selfdistill-uuid-8" / "model" / "recipe_card.json").read_text())
    assert card["distillation"]["teacher"] == "base" and [s["stage"] for s in card["stages"]] == ["stage2-student"]

    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    assert main([*BASE_ARGS, "--recipe", "sft", "--sizes", "4", "8", "16", "--out", str(out)]) == 0
    second = capsys.readouterr().out
    assert second.count("training ...") == 2  # only sft × {name-like, UUID} × 16 was new
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    again = json.loads((out / "interference.json").read_text())
    assert [r["size"] for r in again["conditions"]] == [4, 4, 8, 8, 16, 16]
    assert again["conditions"][:4] == [r for r in summary["conditions"] if r["recipe"] == "sft"]

    assert main([*BASE_ARGS, "--recipe", "sft", "--sizes", "4", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds results made with other settings" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--recipe", "known-only"], "nothing for it to train on"),
    (["--recipe", "dpo"], "unknown recipe 'dpo'"),
    (["--sizes", "0"], "is not a whole number of at least 1"),  # refused by the flag's type (argparse)
    (["--keys", "guid"], "unknown key kind"),
    (["--set", "model=toy"], "model is set by interference itself"),
    (["--set", "learning_rate=fast"], "learning_rate"),
    (["--set", "learning_rate=-1"], "learning_rate must be a finite number > 0"),
    (["--set", "max_steps=0"], "max_steps must be -1"),
    (["--set", "gradient_accumulation_steps=0"], "gradient_accumulation_steps must be"),
    (["--set", "distill_tau=nan"], "distill_tau must be"),
    (["--relation", "P0"], "unknown relation"),
    (["--layer", "7"], "layer 7 does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_world, tmp_path, capsys, extra, message):
    from factbench.toyworld import toy_split

    toy_split("tiny")  # built once before: its first build loads the world (and says so on stderr)
    capsys.readouterr()
    out = tmp_path / "probe"
    try:
        code = main([*BASE_ARGS, "--sizes", "4", *extra, "--out", str(out)])
    except SystemExit as e:  # argparse's refusals
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_damaged_settings_record_is_refused_in_one_line(tiny_world, tmp_path, capsys):
    from factbench.toyworld import toy_split

    toy_split("tiny")
    for text, message in (('{"schema": ', "does not read (truncated?)"), ("[1]", "is not an interference settings")):
        out = tmp_path / "probe"
        out.mkdir(exist_ok=True)
        (out / "settings.json").write_text(text)
        capsys.readouterr()
        assert main([*BASE_ARGS, "--sizes", "4", "--out", str(out)]) == 2
        errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("factbench: error")]
        assert len(errors) == 1 and message in errors[0]
        assert [p.name for p in out.iterdir()] == ["settings.json"]


def test_full_disk_is_one_line_and_leaves_no_folder(tiny_world, full_disk, capsys):
    from conftest import fill

    from factbench.toyworld import toy_split

    toy_split("tiny")
    fill(full_disk)
    capsys.readouterr()
    assert main([*BASE_ARGS, "--sizes", "4", "--out", str(full_disk / "x")]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("factbench: error")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "nothing was changed" in errors[0], errors
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_a_second_run_into_the_same_folder_is_refused(tiny_world, tmp_path, capsys):
    from factbench.files import output_lock

    out = tmp_path / "probe"
    with output_lock(out):
        assert main([*BASE_ARGS, "--sizes", "4", "--out", str(out)]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("factbench: error")]
    assert len(errors) == 1 and "being written by another factbench process" in errors[0]
    assert [p.name for p in out.iterdir()] == [".lock"]
