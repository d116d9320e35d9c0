"""Per-sample answer logs in lm-eval's shape (factbench.sample_logs): written, found and read back."""

import json

import pytest

from factbench import data, prompts, protocol, question_sets, sample_logs
from factbench.errors import FactbenchError


def _rows():
    facts = data.load("dev", ["P17"])[:3]
    return [sample_logs.record(i, question_sets.doc(f), prompts.build_prompt(f), f" {f.answers[0]}\nQ: next", True,
                               True, protocol.generation_kwargs()) for i, f in enumerate(facts)], facts


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_record_reads_back_cut_at_the_stop_string(tmp_path):
    rows, facts = _rows()
    read = sample_logs.read(_write(tmp_path / "samples_factforget_heldout.jsonl", rows))
    assert list(read) == [f.id for f in facts]
    first = read[facts[0].id]
    assert first["completion"] == facts[0].answers[0]  # cut at "\n" and stripped, as graded
    assert first["em"] is True and first["contains"] is True
    assert first["prompt_hash"] == rows[0]["prompt_hash"] != rows[1]["prompt_hash"]
    assert rows[0]["arguments"]["gen_args_0"]["arg_1"] == protocol.generation_kwargs()


def test_lmeval_list_shaped_filtered_resps_are_read(tmp_path):
    rows, facts = _rows()
    rows[1]["filtered_resps"] = [[" Spain\n", "ignored"]]
    read = sample_logs.read(_write(tmp_path / "samples.jsonl", rows))
    assert read[facts[1].id]["completion"] == "Spain"


@pytest.mark.parametrize("edit", [lambda r: r.pop("em"), lambda r: r.__setitem__("filtered_resps", []),
                                  lambda r: r["doc"].pop("id")])
def test_a_bad_row_is_one_error_line_naming_it(edit, tmp_path):
    rows, _ = _rows()
    edit(rows[2])
    path = _write(tmp_path / "samples.jsonl", rows)
    with pytest.raises(FactbenchError) as e:
        sample_logs.read(path)
    assert str(e.value).startswith(f"{path}:3 is not a factforget sample") and "\n" not in str(e.value)


def test_find_prefers_factbench_then_the_newest_lmeval_file(tmp_path):
    rows, _ = _rows()
    with pytest.raises(FactbenchError, match="did lm_eval run with --log_samples"):
        sample_logs.find(tmp_path, "factforget_new")
    model = tmp_path / "model"
    model.mkdir()
    for date in ("2025-01-02T10-00-00.1", "2025-03-04T10-00-00.1"):
        _write(model / f"samples_factforget_new_{date}.jsonl", rows)
    assert sample_logs.find(tmp_path, "factforget_new").name == "samples_factforget_new_2025-03-04T10-00-00.1.jsonl"
    own = _write(tmp_path / "samples_factforget_new.jsonl", rows)
    assert sample_logs.find(tmp_path, "factforget_new") == own


def test_a_file_that_is_not_utf8_or_has_a_truncated_line_is_refused_naming_the_line(tmp_path):
    rows, _ = _rows()
    path = _write(tmp_path / "samples.jsonl", rows)
    data = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([data[0], data[1].replace(b'"doc"', b'"d\xff\xfec"'), *data[2:]]))
    with pytest.raises(FactbenchError, match=r"samples.jsonl:2 is not UTF-8 text"):
        sample_logs.read(path)
    path.write_bytes(b"\n".join(data)[:-40])
    with pytest.raises(FactbenchError, match=r"samples.jsonl:3 is not a factforget sample \(not valid JSON"):
        sample_logs.read(path)


def test_write_folder_ties_every_row_to_its_summary(tmp_path):
    rows, _ = _rows()
    summary = sample_logs.write_folder(tmp_path / "a", {"samples_x.jsonl": rows},
                                       {"engine": {"model": {"source": "local", "name": "/m"}}})
    written = [json.loads(line) for line in (tmp_path / "a" / "samples_x.jsonl").read_text().splitlines()]
    assert {r["run_id"] for r in written} == {summary["run_id"]}
    assert summary["files"]["samples_x.jsonl"]["rows"] == 3
    assert json.loads((tmp_path / "a" / "summary.json").read_text()) == summary
    with pytest.raises(FactbenchError, match=r"holds the answers of another model \(/m\), not /n"):
        sample_logs.check_out_folder(tmp_path / "a", {"source": "local", "name": "/n"})
    sample_logs.check_out_folder(tmp_path / "a", {"source": "local", "name": "/m"})


def test_an_out_json_that_is_something_else_is_never_overwritten(tmp_path):
    def is_card(obj):
        return obj.get("schema") == "card/1"

    for content in ("my notes", '{"schema": "other"}', ""):
        (tmp_path / "x.json").write_text(content)
        with pytest.raises(FactbenchError, match="exists and is not a score card: refusing to overwrite it"):
            sample_logs.check_out_json(tmp_path / "x.json", is_card, "a score card")
    (tmp_path / "x.json").write_text('{"schema": "card/1"}')
    sample_logs.check_out_json(tmp_path / "x.json", is_card, "a score card")
    sample_logs.check_out_json(tmp_path / "new" / "y.json", is_card, "a score card")
    assert not (tmp_path / "new").exists()


def test_an_output_that_cannot_be_written_is_refused_before_the_work(full_disk):
    from conftest import fill

    from factbench.errors import WriteError

    fill(full_disk)
    for target in (full_disk / "card.json", full_disk / "a" / "b" / "card.json", full_disk):
        with pytest.raises(WriteError, match="cannot write .*: (no space left on the device|permission denied)"):
            sample_logs.check_writable(target)
    assert sorted(p.name for p in full_disk.iterdir()) in (["filler"], [])
