"""`factbench eval` (factbench.asking.evaluate): its answers folder is one model's one run, written whole.

A scripted engine stands in for the model (no weights).
"""

import json

import pytest
from conftest import fill
from test_knowledge import ScriptedEngine

from factbench import asking
from factbench.cli import main
from factbench.errors import FactbenchError, WriteError


class Named(ScriptedEngine):
    def __init__(self, model):
        super().__init__(lambda question, exemplars, i: "Paris")
        self.model = model

    def describe(self):
        return {"engine": "scripted", "model": self.model, "dtype": None}


@pytest.fixture
def engines(monkeypatch):
    """`make_engine` answers with a scripted engine whose identity is the spec's (as models.resolve says)."""
    from factbench import models

    made = []

    def make_engine(name, spec, **kwargs):
        made.append(spec)
        return Named(models.resolve(spec, kwargs.get("revision")))

    monkeypatch.setattr("factbench.engines.make_engine", make_engine)
    return made


def test_eval_writes_samples_and_summary_of_one_run(engines, tmp_path):
    summary = asking.evaluate("toy:tiny", split="dev", relations=["P36"], limit=5, out=tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and {r["run_id"] for r in rows} == {summary["run_id"]}
    assert summary["files"]["samples.jsonl"]["rows"] == 5
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    assert summary["engine"]["model"]["name"] == "toy:tiny"


def test_another_model_into_an_existing_folder_is_refused_before_it_loads(engines, tmp_path, capsys):
    out = tmp_path / "run"
    asking.evaluate("toy:tiny", split="dev", relations=["P36"], limit=5, out=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["eval", "--model", "toy:small", "--split", "dev", "--limit", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds the answers of another model (toy:tiny), not toy:small" in err and "remove" in err
    assert engines == ["toy:tiny"]  # refused before the other model was loaded
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    asking.evaluate("toy:tiny", split="dev", relations=["P36"], limit=3, out=out)  # the same model: replaced whole
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3


def test_an_out_that_cannot_be_written_is_refused_before_the_model_loads(engines, full_disk, tmp_path):
    fill(full_disk)
    with pytest.raises(WriteError, match="cannot write"):
        asking.evaluate("toy:tiny", split="dev", limit=3, out=full_disk / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FactbenchError, match="exists and is not a folder"):
        asking.evaluate("toy:tiny", split="dev", limit=3, out=tmp_path / "file")
    assert engines == []
    assert not (full_disk / "run").exists()


def test_a_full_disk_at_the_end_leaves_no_samples_without_summary(engines, full_disk, monkeypatch):
    fill(full_disk)
    monkeypatch.setattr("factbench.sample_logs.check_writable", lambda target: None)  # it filled up meanwhile
    with pytest.raises(WriteError, match="cannot write .*run: .*nothing was changed there"):
        asking.evaluate("toy:tiny", split="dev", limit=3, out=full_disk / "run")
    assert not (full_disk / "run").exists()
