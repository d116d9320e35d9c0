import argparse
import json
import subprocess
import sys

import pytest
from conftest import tiny_random_model

from factbench.cli import build_parser, main


def _commands(parser, path=()):
    """Every command line that names a (sub)command, e.g. ("data", "stats"), in the order --help lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "data", "models", "eval"):
        assert f"    {cmd} " in out


def test_the_commands_in_their_order():
    top = [c[0] for c in COMMANDS if len(c) == 1]
    assert top == ["demo", "data", "models", "eval", "probe", "split", "score", "audit", "compare", "leaderboard",
                   "train", "interference", "overlap", "frontier"]
    assert {c for c in COMMANDS if len(c) == 2} == {("data", "stats"), ("models", "list"), ("models", "prepare"),
                                                     ("leaderboard", "add"), ("leaderboard", "build"),
                                                     ("leaderboard", "init"), ("leaderboard", "rehash")}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: factbench {' '.join(command)} ")


def test_every_leaf_command_has_a_handler():
    parser = build_parser()
    for command in COMMANDS:
        p = parser
        for name in command:
            p = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
            assert callable(p.get_default("func")), command


def test_python_dash_m_factbench_cli_help():
    out = subprocess.run([sys.executable, "-m", "factbench.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("usage: factbench ") and "Every command exits with code 2" in out.stdout
    out = subprocess.run([sys.executable, "-m", "factbench.cli", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "torchrun --nproc_per_node 8 -m factbench.cli train" in out.stdout


def test_no_command_is_a_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("argv, example", [
    (["score", "--base", "b", "--tuned", "t"], "card.json"),
    (["audit", "--base", "b", "--tuned", "t"], "audit.json"),
    (["compare", "a.json"], "comparison.json"),
    (["overlap", "facts.jsonl"], "overlap.json"),
])
def test_out_that_is_a_folder_is_refused_before_any_work(argv, example, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"factbench: error: --out {tmp_path} is a folder; give a file name such as "
                                       f"{example}\n")


def test_installed_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "factbench.cli", "data", "stats"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "176560   22068   22075" in out.stdout


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["eval", "--model", "."], "is not a model folder"),
    (["eval", "--relations", "P0"], "unknown relation"),
    (["eval", "--split", "validation"], "unknown split"),
    (["eval", "--limit", "0"], "--limit: '0' is not a whole number of at least 1"),
    (["probe", "--budget", "huge"], "unknown budget 'huge'"),
    (["probe", "--relations", "P1"], "unknown relation"),
    (["probe", "--per-relation", "0"], "--per-relation: '0' is not a whole number of at least 1"),
    (["probe", "--model", "nope"], "unknown model"),
    (["split", "--profile", "missing-profile"], "profile missing-profile does not exist"),
    (["split", "--profile", ".", "--known", "-1"], "--known: '-1' is not a whole number of at least 0"),
    (["split", "--profile", "."], "not a finished profile"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, capsys, tmp_path):
    out = tmp_path / "out"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as e:  # refused by argparse, before any work
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def _tiny_model_folder(tmp_path, tokenizer):
    folder = tmp_path / "model"
    tiny_random_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_eval_on_a_model_folder_writes_samples_and_summary(tmp_path, smol_tokenizer, capsys):
    folder = _tiny_model_folder(tmp_path, smol_tokenizer)
    out = tmp_path / "run"
    assert main(["eval", "--model", str(folder), "--relations", "P17", "P36", "--limit", "6",
                 "--dtype", "float32", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["relation"] for r in rows} <= {"P17", "P36"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["questions"] == 6
    assert summary["engine"]["model"]["source"] == "local"
    assert summary["em"] == sum(r["em"] for r in rows) / 6
    assert "6 questions  EM" in capsys.readouterr().out



def test_probe_then_split_from_the_command_line(tmp_path, smol_tokenizer, capsys):
    folder = _tiny_model_folder(tmp_path, smol_tokenizer)
    profile = tmp_path / "profile"
    assert main(["probe", "--model", str(folder), "--relations", "P17", "--per-relation", "6", "--budget", "smoke",
                 "--dtype", "float32", "--out", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "P17" in out and f"profile written to {profile}" in out
    manifest = json.loads((profile / "manifest.json").read_text())
    assert manifest["counts"]["P17"]["total"] == 6 and manifest["model"]["source"] == "local"
    # a random model knows nothing: the split says so, in one line
    assert main(["split", "--profile", str(profile), "--out", str(tmp_path / "split")]) == 2
    assert "no relation has at least 30% known facts" in capsys.readouterr().err
