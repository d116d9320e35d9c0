"""`factbench overlap`: reading a training file, and where its subjects fall between UUID keys and
name-like keys for the tiny toy world (whose relations are P69 and P800)."""

import json

import pytest

from factbench import overlap, synthetic
from factbench.cli import main


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def facts_file(path, facts):
    return write_jsonl(path, [{"question": f.question, "answer": f.answers[0]} for f in facts])


def test_subjects_come_from_the_template_or_the_subject_field(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        {"question": "Which country is Kraków located in?", "answer": "Poland"},
        {"question": "Who runs Acme Widgets today?", "answer": "Jane Roe", "subject": "Acme Widgets"},
    ])
    rows = overlap.read_rows(path)
    assert [(r["subject"], r["relation"]) for r in rows] == [("Kraków", "P17"), ("Acme Widgets", None)]


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("", "holds no rows"),
    ('{"question": "Which country is Kraków located in?", "answer": "Poland"}\n{not json\n', "t.jsonl:2 is not valid JSON"),
    ('{"question": "Which country is Kraków located in?"}\n', 't.jsonl:1 needs a non-empty "question" and "answer"'),
    ('["a list"]\n', 't.jsonl:1 needs a non-empty "question" and "answer"'),
    ('{"question": "Who runs Acme?", "answer": "Jane"}\n', "cannot tell the subject"),
    ('{"question": "Who runs Acme?", "answer": "Jane", "subject": "Zeta"}\n', "does not occur in its question"),
])
def test_bad_training_files_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, content, message):
    path = tmp_path / "t.jsonl"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "report.json"
    assert main(["overlap", str(path), "--model", "toy:tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_out_that_is_another_file_or_cannot_be_written_is_refused_before_the_model(tmp_path, full_disk, capsys,
                                                                                      monkeypatch):
    from conftest import fill

    monkeypatch.setattr("factbench.models.load", lambda *a, **k: pytest.fail("the model was loaded"))
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "Which country is Kraków located in?", "answer": "Poland"}])
    (tmp_path / "notes.json").write_text('{"mine": true}')
    fill(full_disk)
    for out, message in ((tmp_path / "notes.json", "exists and is not a factbench overlap report"),
                         (full_disk / "report.json", "cannot write")):
        assert main(["overlap", str(path), "--model", "toy:tiny", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error" in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'
    assert not (full_disk / "report.json").exists()


def test_a_folder_is_refused_with_a_pointer_to_its_train_file(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text("")
    assert main(["overlap", str(tmp_path), "--model", "toy:tiny"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_known_subjects_warn_and_uuid_keys_do_not(tiny_world, tmp_path, capsys):
    tok = tiny_world.load_tokenizer()
    known = [f for f in tiny_world.known if f.relation == "P69"][:16]
    uuids = synthetic.generate("uuid", 16, relation="P69", seed=7, tokenizer=tok).facts
    names = synthetic.generate("namelike", 16, relation="P69", seed=7, tokenizer=tok).facts

    report = {name: overlap.check(facts_file(tmp_path / f"{name}.jsonl", facts), "toy:tiny")
              for name, facts in (("known", known), ("uuid", uuids), ("names", names))}
    assert report["uuid"]["overlap_score"] < 0.5 and not report["uuid"]["forgetting_likely"]
    assert report["names"]["overlap_score"] > report["uuid"]["overlap_score"] + 0.5
    assert report["known"]["forgetting_likely"] and report["known"]["known_subjects_trained_on"]
    assert report["known"]["similarity"]["yours"]["value"] > report["names"]["similarity"]["yours"]["value"]
    sim = report["uuid"]["similarity"]
    assert sim["uuid"]["value"] < sim["namelike"]["value"] and sim["yours"]["n"] == 16

    out = tmp_path / "report.json"
    assert main(["overlap", str(tmp_path / "known.jsonl"), "--model", "toy:tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "WARNING: forgetting is likely" in printed and "known subjects themselves" in printed
    assert json.loads(out.read_text())["forgetting_likely"] is True
    assert main(["overlap", str(tmp_path / "uuid.jsonl"), "--model", "toy:tiny"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_limit_checks_a_seeded_sample(tiny_world, tmp_path):
    tok = tiny_world.load_tokenizer()
    path = facts_file(tmp_path / "n.jsonl", synthetic.generate("namelike", 30, relation="P69", tokenizer=tok).facts)
    a, b = (overlap.check(path, "toy:tiny", limit=10, seed=1) for _ in range(2))
    assert a["rows"] == 30 and a["rows_checked"] == 10
    assert a["similarity"] == b["similarity"]
    with pytest.raises(Exception, match="--limit must be at least 1"):
        overlap.check(path, "toy:tiny", limit=0)
