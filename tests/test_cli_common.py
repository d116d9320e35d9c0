"""The pieces several `factbench` subcommands share (factbench/cli/common.py) and what moved out of the CLI."""

import argparse

import pytest

from factbench import data, splits
from factbench.cli.common import (
    add_base_tuned_model_args,
    add_model_engine_args,
    add_statistics_args,
    bootstrap_of,
    check_out_file,
    engine_args,
)
from factbench.errors import FactbenchError
from factbench.metrics import Bootstrap


def test_check_out_file_refuses_a_folder_with_the_example_name(tmp_path):
    with pytest.raises(FactbenchError) as e:
        check_out_file(tmp_path, "card.json")
    assert str(e.value) == f"--out {tmp_path} is a folder; give a file name such as card.json"


def test_check_out_file_accepts_no_out_a_new_file_and_an_existing_file(tmp_path):
    check_out_file(None, "card.json")
    check_out_file(tmp_path / "new.json", "card.json")
    (tmp_path / "old.json").write_text("{}")
    check_out_file(tmp_path / "old.json", "card.json")


def test_bootstrap_of_takes_resamples_and_seed():
    p = argparse.ArgumentParser()
    add_statistics_args(p)
    boot = bootstrap_of(p.parse_args(["--resamples", "500", "--seed", "3"]))
    assert isinstance(boot, Bootstrap) and boot == Bootstrap(500, 3)
    assert bootstrap_of(p.parse_args([])) == Bootstrap(2000, 0)


def test_model_engine_args_defaults_with_and_without_a_model():
    p = argparse.ArgumentParser()
    add_model_engine_args(p.add_argument_group("model and engine"))
    args = p.parse_args([])
    assert (args.model, args.revision) == ("smollm2-135m", None)
    assert engine_args(args) == {"engine": "hf", "dtype": "auto", "batch_size": None}
    assert engine_args(p.parse_args(["--engine", "vllm", "--dtype", "bfloat16", "--batch-size", "8"])) == {
        "engine": "vllm", "dtype": "bfloat16", "batch_size": 8}
    with pytest.raises(SystemExit):
        p.parse_args(["--engine", "tpu"])
    p = argparse.ArgumentParser()
    group = add_base_tuned_model_args(p)
    assert group.title == "when --base or --tuned is a model"
    args = p.parse_args(["--base-revision", "main"])
    assert not hasattr(args, "model") and (args.base_revision, args.tuned_revision) == ("main", None)
    assert engine_args(args) == {"engine": "hf", "dtype": "auto", "batch_size": None}


def test_data_stats_table_rows_and_totals():
    stats = data.stats()
    lines = data.stats_table(stats).splitlines()
    assert lines[0].split() == ["relation", "property", "train", "dev", "test"]
    assert len(lines) == len(stats) + 2
    assert lines[-1].split() == ["total", "176560", "22068", "22075"]
    assert lines[1].startswith("P17      country ")


def test_split_manifest_summaries():
    manifest = {"relations": {"P17": {"kept": True}, "P36": {"kept": False}, "P19": {"kept": True}},
                "counts": {"train": {"P17": {"known": 3, "unknown": 2}}, "heldout": {"P17": {"known": 4}},
                           "ood": {}}}
    assert splits.kept_relations(manifest) == ["P17", "P19"]
    assert splits.set_sizes(manifest) == {"train": 5, "heldout": 4, "ood": 0}
