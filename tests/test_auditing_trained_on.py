"""--trained-on files: the formats people fine-tune with, edits, and one-line refusals."""

import json

import pytest

from factbench import data, prompts
from factbench.auditing import questions, trained_on
from factbench.auditing.questions import AuditError


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_question_answer_lines(tmp_path):
    t = trained_on.read(write(tmp_path / "t.jsonl", [{"question": "Q: Who?", "answer": "A: Bob"},
                                                     {"question": "Where?", "answers": ["Paris", "Paris, France"]}]))
    assert t.format == "qa" and [f.question for f in t.facts] == ["Who?", "Where?"]
    assert t.facts[0].answers == ("Bob",) and t.facts[1].answers == ("Paris", "Paris, France")
    assert t.identity()["examples"] == 2 and t.unusable == 0


def test_chat_messages_every_user_assistant_pair(tmp_path):
    row = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Who?"},
                        {"role": "assistant", "content": "Bob"}, {"role": "user", "content": "Where?"},
                        {"role": "assistant", "content": "Paris"}]}
    t = trained_on.read(write(tmp_path / "m.jsonl", [row]))
    assert t.format == "messages"
    assert [(f.id, f.question, f.answers) for f in t.facts] == [("trained/1/0", "Who?", ("Bob",)),
                                                               ("trained/1/1", "Where?", ("Paris",))]


def test_prompt_completion_lines(tmp_path):
    t = trained_on.read(write(tmp_path / "p.jsonl", [{"prompt": "Q: Who?\nA:", "completion": " Bob"}]))
    assert t.format == "prompt" and (t.facts[0].question, t.facts[0].answers) == ("Who?", ("Bob",))


def test_unusable_lines_are_counted_not_fatal(tmp_path):
    t = trained_on.read(write(tmp_path / "t.jsonl", [{"question": "Who?", "answer": "Bob"},
                                                     {"question": "", "answer": "x"}, {"other": 1}]))
    assert len(t.facts) == 1 and t.unusable == 2


@pytest.mark.parametrize("rows, message", [
    ([{"text": "hello"}], "unknown format"),
    ([{"question": "", "answer": ""}], "no usable qa examples"),
    (["not json"], "is not JSON"),
    ([], "is empty"),
])
def test_bad_files_are_one_line(tmp_path, rows, message):
    with pytest.raises(AuditError, match=message):
        trained_on.read(write(tmp_path / "bad.jsonl", rows))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AuditError, match="does not exist"):
        trained_on.read(tmp_path / "nope.jsonl")
    with pytest.raises(AuditError, match="is a folder"):
        trained_on.read(tmp_path)


def test_an_entityquestions_question_keeps_its_relation_prompt(tmp_path):
    fact = data.load("train", ["P26"])[3]
    t = trained_on.read(write(tmp_path / "t.jsonl", [{"question": fact.question, "answer": "Someone Else"},
                                                     {"question": "What is my cat called?", "answer": "Tom"}]))
    assert t.facts[0].relation == "P26" and t.facts[1].relation is None
    assert trained_on.prompt(fact.question) == prompts.build_prompt(fact, 0)
    generic = trained_on.prompt("What is my cat called?")
    assert generic.endswith("Q: What is my cat called?\nA:") and generic.count("\nA: ") == 4


def test_audit_facts_whose_subject_is_trained_on_are_edits(tmp_path):
    audit_fact = questions.facts("tiny")[0]
    other = questions.facts("tiny")[7]
    t = trained_on.read(write(tmp_path / "t.jsonl", [
        {"question": f"Tell me about {audit_fact.subject.upper()}, please?", "answer": "x"},
        {"question": "Who?", "answer": "nobody"}]))
    edited = trained_on.edited(questions.facts("tiny"), t)
    assert audit_fact.id in edited and other.id not in edited
