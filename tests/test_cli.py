import json
import subprocess
import sys

import pytest
from conftest import tiny_random_model

from factbench.cli import main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "data", "models", "eval"):
        assert f"    {cmd} " in out


def test_installed_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "factbench.cli", "data", "stats"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "176560   22068   22075" in out.stdout


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["eval", "--model", "."], "is not a model folder"),
    (["eval", "--relations", "P0"], "unknown relation"),
    (["eval", "--split", "validation"], "unknown split"),
    (["eval", "--limit", "0"], "--limit must be at least 1"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, capsys, tmp_path):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_eval_on_a_model_folder_writes_samples_and_summary(tmp_path, smol_tokenizer, capsys):
    folder = tmp_path / "model"
    tiny_random_model("llama", len(smol_tokenizer)).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
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
