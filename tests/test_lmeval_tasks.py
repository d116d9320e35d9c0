"""The factforget lm-eval tasks: what each asks, that it asks it like the probe, and that bad
--metadata is refused with one clear line. No model runs here (see test_lmeval_agreement.py)."""

import json
import shutil
from pathlib import Path

import pytest
from test_knowledge import SMOKE, ScriptedEngine

import factbench
from factbench import (
    knowledge,
    lmeval_cli,
    lmeval_hooks,
    matching,
    prompts,
    protocol,
    question_sets,
    sample_logs,
    splits,
)
from factbench.cli import main
from factbench.protocol import protocol_hash, question_protocol

SPLIT_SETTINGS = splits.SplitSettings(known=20, unknown=30, heldout=15, ood=5, seed=1, min_known_share=0.1)


def make_scripted_split(folder: Path) -> tuple[Path, Path]:
    """A real profile and split in a second: the scripted 'model' knows facts with an even index."""
    pool = knowledge.Pool(relations=("P17", "P19", "P36", "P50"), per_relation=60)
    gold = {f.question: (f.answers[0], f.index) for f in pool.facts()}
    engine = ScriptedEngine(lambda q, ex, i: gold[q][0] if gold[q][1] % 2 == 0 else "no idea")
    profile_dir = knowledge.probe(engine, pool, SMOKE, folder / "profile")
    splits.make_split(knowledge.load_profile(profile_dir), SPLIT_SETTINGS, folder / "split")
    return profile_dir, folder / "split"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    return make_scripted_split(tmp_path_factory.mktemp("scripted"))


@pytest.fixture(scope="module")
def split_dir(scripted):
    return scripted[1]


@pytest.fixture(scope="module")
def task_manager_for():
    """A TaskManager that indexes only the factforget folder (all of lm-eval's tasks take ~15 s)."""
    from lm_eval.tasks import TaskManager

    return lambda **metadata: TaskManager(include_path=str(factbench.tasks_dir()), include_defaults=False,
                                          metadata=metadata)


def _yaml(name: str) -> dict:
    # lm-eval's own loader: includes merged, `!function` left unresolved
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(factbench.tasks_dir() / name, resolve_func=False)


# ---- the task folder -----------------------------------------------------------------------------

def test_every_set_has_a_task_and_the_groups_hold_them(task_manager_for):
    names = [question_sets.task_name(s) for s in question_sets.SETS]
    tm = task_manager_for()
    assert set(tm.all_tasks) == {"factforget", "factforget_split", "factforget_audit", *names}
    # The default group is the audit set: the same questions for every model, no split needed.
    assert _yaml("_factforget.yaml")["task"] == ["factforget_audit"]
    split_group = _yaml("_factforget_split.yaml")
    assert split_group["task"] == [question_sets.task_name(s) for s in question_sets.SPLIT_SETS]
    assert "aggregate_metric_list" not in split_group  # retention and acquisition are never averaged
    for s in question_sets.SETS:
        cfg = _yaml(f"factforget_{s}.yaml")
        assert cfg["task"] == question_sets.task_name(s)
        assert cfg["dataset_kwargs"] == {"question_set": s}
        assert cfg["metadata"]["version"] == protocol.LMEVAL_TASK_VERSION
    assert _yaml("factforget_audit.yaml")["metadata"]["version"] == protocol.LMEVAL_TASK_VERSION


def test_yaml_decoding_is_the_question_protocol():
    cfg = _yaml("factforget_heldout.yaml")
    protocol = question_protocol()
    assert cfg["generation_kwargs"] == {"until": protocol["stop"], "max_gen_toks": protocol["max_new_tokens"],
                                        "do_sample": False, "temperature": 0.0}
    assert list(lmeval_hooks.STOP) == protocol["stop"]
    assert cfg["num_fewshot"] == 0 and cfg["output_type"] == "generate_until"
    assert [m["metric"] for m in cfg["metric_list"]] == ["em", "contains"]
    # Functions are named by module path, so they resolve wherever the YAML folder is installed.
    for key, hook in {"custom_dataset": "load_docs", "doc_to_text": "doc_to_text",
                      "process_results": "process_results"}.items():
        assert cfg[key].endswith(f"factbench.lmeval_hooks.{hook}") and callable(getattr(lmeval_hooks, hook))


# ---- which questions -----------------------------------------------------------------------------

def test_each_set_holds_the_split_facts_it_names(split_dir):
    split = splits.load_split(split_dir)
    ids = {s: [d["id"] for d in lmeval_hooks.load_docs(s, split=str(split_dir))["test"]] for s in question_sets.SETS}
    assert ids["heldout"] == [r["id"] for r in split.sets["heldout"]]
    assert ids["ood"] == [r["id"] for r in split.sets["ood"]]
    assert ids["new"] == [r["id"] for r in split.sets["train"] if r["kind"] == "unknown"]
    assert ids["known_train"] == [r["id"] for r in split.sets["train"] if r["kind"] == "known"]
    assert (len(ids["new"]), len(ids["known_train"]), len(ids["heldout"]), len(ids["ood"])) == (30, 20, 15, 5)


def test_pool_is_the_first_50_test_questions_of_every_relation():
    docs = lmeval_hooks.load_docs("pool", split="/ignored/for/the/pool")["test"]
    assert len(docs) == 24 * 50
    assert docs[0]["id"] == "P17/test/0" and docs[49]["id"] == "P17/test/49" and docs[50]["id"] == "P19/test/0"
    assert [d["id"] for d in docs] == [f.id for f in question_sets.pool_facts()]


def test_prompt_is_exactly_the_probe_prompt_and_lm_eval_adds_nothing(task_manager_for, split_dir):
    tm = task_manager_for(split=str(split_dir))
    task = tm.load(["factforget_new"])["tasks"]["factforget_new"]
    docs = list(task.test_docs())
    for doc in docs[:5]:
        fact = question_sets.fact_of(doc)
        assert lmeval_hooks.doc_to_text(doc) == prompts.build_prompt(fact, 0)
        assert task.fewshot_context(doc, 0) == prompts.build_prompt(fact, 0)
        assert task.doc_to_target(doc) == list(fact.answers)
        assert doc["id"] == fact.id and doc["category"] == "Unknown"


def test_scores_are_factbench_scores():
    doc = {"answers": ["Paris"]}
    assert lmeval_hooks.process_results(doc, [" Paris\nQ: next"]) == {"em": 1.0, "contains": 1.0}
    assert lmeval_hooks.process_results(doc, [" Paris, France"]) == {"em": 0.0, "contains": 1.0}
    assert lmeval_hooks.process_results(doc, [" Lyon"]) == {"em": 0.0, "contains": 0.0}
    assert matching.exact_match("the Paris.", ["Paris"])


# ---- bad --metadata ------------------------------------------------------------------------------

def test_missing_split_folder_is_refused_by_the_task_loader(task_manager_for, tmp_path):
    tm = task_manager_for(split=str(tmp_path / "nowhere"))
    with pytest.raises(question_sets.QuestionSetError, match=r"split folder .*nowhere \(given as --metadata "
                                                              r"\"split\"\) does not exist"):
        tm.load(["factforget_heldout"])


def test_folder_without_manifest_is_refused(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(question_sets.QuestionSetError, match=r"is not a split folder \(no manifest.json\)"):
        lmeval_hooks.load_docs("heldout", split=str(tmp_path))


def test_split_of_another_question_protocol_is_refused(split_dir, tmp_path):
    other = tmp_path / "split"
    shutil.copytree(split_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["protocol_hash"] = protocol_hash({**question_protocol(), "shots": 5})
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(question_sets.QuestionSetError,
                       match=r"made under question protocol \w+, but this factbench asks questions under "
                             + protocol_hash(question_protocol())):
        lmeval_hooks.load_docs("new", split=str(other))


def test_tampered_split_is_refused(split_dir, tmp_path):
    other = tmp_path / "split"
    shutil.copytree(split_dir, other)
    with open(other / "heldout.jsonl", "a") as f:
        f.write(json.dumps({"id": "P17/train/0"}) + "\n")
    with pytest.raises(question_sets.QuestionSetError, match="does not match its manifest checksum"):
        lmeval_hooks.load_docs("heldout", split=str(other))


def test_split_and_profile_together_are_refused(scripted):
    profile_dir, split_dir = scripted
    with pytest.raises(question_sets.QuestionSetError, match="give a split .* or a profile .*, not both"):
        lmeval_hooks.load_docs("heldout", split=str(split_dir), profile=str(profile_dir))


def test_split_tasks_without_a_split_are_refused_not_defaulted():
    # Task version 2.0: a Llama or Qwen fine-tune must not silently be asked SmolLM2's split.
    with pytest.raises(question_sets.QuestionSetError, match=r"pass --metadata .*factforget_audit"):
        lmeval_hooks.load_docs("heldout")
    assert len(lmeval_hooks.load_docs("pool")["test"]) == 1200  # the pool needs no split
    bundled = lmeval_hooks.load_docs("heldout", split="smollm2-135m")["test"]
    assert [d["id"] for d in bundled] == [r["id"] for r in question_sets.find_split(None).sets["heldout"]]


def test_missing_bundled_split_says_how_to_pass_one(monkeypatch, tmp_path):
    monkeypatch.setattr(question_sets, "DEFAULT_SPLIT_DIR", tmp_path / "not-yet")
    with pytest.raises(question_sets.QuestionSetError, match="bundled SmolLM2-135M split .* is not installed yet"):
        lmeval_hooks.load_docs("heldout", split="smollm2-135m")


def test_audit_task_docs_every_question_under_every_prompt(tmp_path):
    from factbench.auditing import questions

    docs = lmeval_hooks.load_audit_docs()["test"]
    assert len(docs) == 1200 * 4 and len(lmeval_hooks.load_audit_docs(prompts=1)["test"]) == 1200
    first = docs[0]
    fact = question_sets.fact_of(first)
    assert lmeval_hooks.audit_doc_to_text(first) == prompts.build_prompt(fact, first["prompt_index"])
    assert {d["prompt_index"] for d in docs} == {0, 1, 2, 3}
    assert len(lmeval_hooks.load_audit_docs(preset="tiny")["test"]) == len(questions.facts("tiny")) * 2
    train = tmp_path / "t.jsonl"
    train.write_text('{"question": "What is my cat called?", "answer": "Tom"}\n')
    with_training = lmeval_hooks.load_audit_docs(preset="tiny", trained_on=str(train))["test"]
    assert len(with_training) == 241 and with_training[-1]["id"] == "trained/1"
    assert lmeval_hooks.audit_doc_to_text(with_training[-1]).endswith("Q: What is my cat called?\nA:")


def test_the_default_split_is_the_bundled_profiles():
    assert question_sets.DEFAULT_SPLIT_DIR == knowledge.bundled_profile_dir("smollm2-135m") / "split"


# ---- a split derived from a profile --------------------------------------------------------------

def test_profile_gives_a_deterministic_cached_split_that_fits_it(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTBENCH_CACHE", str(tmp_path / "cache"))
    profile_dir, _ = scripted
    first = [d["id"] for d in lmeval_hooks.load_docs("heldout", profile=str(profile_dir))["test"]]
    made = list((tmp_path / "cache" / "splits").iterdir())
    assert len(made) == 1
    again = [d["id"] for d in lmeval_hooks.load_docs("heldout", profile=str(profile_dir))["test"]]
    assert first == again and first
    settings = question_sets.fitting_settings(knowledge.load_profile(profile_dir))
    manifest = json.loads((made[0] / "manifest.json").read_text())
    assert manifest["settings"]["heldout"] == settings.heldout == len(first)


def test_profile_of_another_protocol_is_refused(scripted, tmp_path):
    profile_dir, _ = scripted
    other = tmp_path / "profile"
    shutil.copytree(profile_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["protocol"] = {**manifest["protocol"], "max_new_tokens": 32}
    manifest["protocol_hash"] = protocol_hash(manifest["protocol"])
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(question_sets.QuestionSetError, match=r"max_new_tokens: 32 vs 16.*probe the base model again"):
        lmeval_hooks.load_docs("heldout", profile=str(other))


def test_missing_profile_is_refused(tmp_path):
    with pytest.raises(question_sets.QuestionSetError, match=r"profile .*gone \(given as --metadata \"profile\"\) does not exist"):
        lmeval_hooks.load_docs("heldout", profile=str(tmp_path / "gone"))


# ---- factbench eval --sets and the samples files -------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--sets", "heldout", "retention"], "unknown question set 'retention'"),
    (["--sets", "pool", "--relations", "P17"], "--relations does not apply to --sets"),
    (["--split-dir", "no/such/split"], r"split folder no/such/split (given as --split-dir) does not exist"),
    (["--sets", "pool", "--limit", "0"], "--limit: '0' is not a whole number of at least 1"),
])
def test_bad_sets_input_is_one_line_exit_2(argv, message, capsys, tmp_path):
    try:
        code = main(["eval", *argv, "--out", str(tmp_path / "out")])
    except SystemExit as e:  # refused by argparse, before any work
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_samples_reader_takes_lm_eval_and_factbench_rows(tmp_path):
    doc = question_sets.doc(question_sets.pool_facts()[0])
    prompt = prompts.build_prompt(question_sets.fact_of(doc), 0)
    ours = sample_logs.record(0, doc, prompt, "Iran", True, True, {"until": ["\n"]})
    theirs = {**ours, "resps": [[" Iran\nQ:"]], "filtered_resps": [" Iran\nQ:"]}
    for name, row in (("samples_factforget_pool.jsonl", ours), ("m/samples_factforget_pool_2026.jsonl", theirs)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(json.dumps(row) + "\n")
    a = sample_logs.read(sample_logs.find(tmp_path, "factforget_pool"))
    b = sample_logs.read(sample_logs.find(tmp_path / "m", "factforget_pool"))
    assert a == b == {"P17/test/0": {"completion": "Iran", "em": True, "contains": True,
                                     "prompt_hash": ours["prompt_hash"]}}


# ---- finding the tasks ---------------------------------------------------------------------------

def test_tasks_dir_is_the_repository_folder_in_a_clone():
    assert factbench.tasks_dir() == Path(__file__).resolve().parent.parent / "tasks" / "factforget"
    assert (factbench.tasks_dir() / "README.md").is_file()


def test_factbench_eval_adds_the_include_path_only_where_needed(tmp_path):
    folder, builtin = tmp_path / "repo" / "factforget", tmp_path / "lm_eval" / "tasks"
    add = ["--include_path", str(folder)]
    assert lmeval_cli.lm_eval_argv(["--model", "hf", "--tasks", "factforget"], folder, builtin) == [
        "run", "--model", "hf", "--tasks", "factforget", *add]
    assert lmeval_cli.lm_eval_argv(["ls", "tasks"], folder, builtin) == ["ls", "tasks", *add]
    assert lmeval_cli.lm_eval_argv(["--help"], folder, builtin) == ["--help"]
    installed = builtin / "factforget"
    assert lmeval_cli.lm_eval_argv(["--tasks", "factforget_pool"], installed, builtin) == [
        "run", "--tasks", "factforget_pool"]
    with pytest.raises(SystemExit, match="--include_path is taken"):
        lmeval_cli.lm_eval_argv(["--tasks", "x", "--include_path", "mine"], folder, builtin)
