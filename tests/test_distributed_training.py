"""The recipes under `torchrun --nproc_per_node 2` (gloo, CPU) against one process, same global batch.

Two processes x batch 4 are compared with one process x batch 4 x 2 accumulation steps: DDP
averages the two ranks' micro-batch gradients exactly as accumulation averages two micro-batches
(trainer.py, "Averaging"), and accelerate hands rank r the batches r, r + 2, ... of the same
shuffled order, so losses, accuracies and weights agree up to float summation order (measured:
bit-identical weights on this CPU). SFT is also compared with one process x batch 8, whose single
mean weighs examples by their answer tokens: close, not equal (tolerance below, measured margin).
`max_steps` keeps every step full: where the data do not fill the last step, accelerate repeats the
first examples on the rank left short, which one process does not.

The toy world `toy:tiny` (GPT-2-style, no dropout), 4 steps of 8 sequences, 8 questions per set.
Each torchrun launch costs about 10 s of start-up on two busy cores, so the five other recipes run
in one launch (a driver calling `recipes.train` for each) and SFT through the CLI in another.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from factbench.recipes import train

TOY = {"model": "toy:tiny", "split_dir": "toy:tiny", "answer_end": "newline", "learning_rate": 1e-3,
       "lr_scheduler_type": "constant", "max_steps": 4, "eval_limit": 8, "eval_batch_size": 16,
       "logging_steps": 2, "disable_tqdm": True, "seed": 0}
TWO = {"per_device_train_batch_size": 4}  # x 2 processes
ONE = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}  # the same 8 sequences a step
BIG = {"per_device_train_batch_size": 8}  # one batch of 8: token-weighted mean
OTHERS = {  # name: (recipe, settings)
    "freeze": ("freeze", {}),
    "known-only": ("known-only", {}),
    "l2anchor": ("l2anchor", {"l2_lambda": 0.1}),
    "selfdistill-live": ("selfdistill", {"teacher_cache": "none"}),
    "selfdistill-cached": ("selfdistill", {"teacher_cache": "topk", "teacher_topk": 8}),
}
# DDP vs accumulation: float summation order only (measured: 0 for every recipe). DDP vs one batch
# of 8 (SFT), measured: epoch loss 0.23% apart, weights 4.5e-3 (of weights up to ~1.5 in size).
SAME = {"loss_rtol": 1e-4, "weights_atol": 1e-5}
BIG_BATCH = {"loss_rtol": 1e-2, "weights_atol": 1e-2}

DRIVER = """
import json, sys
from factbench.recipes import train
for name, recipe, settings in json.loads(sys.argv[1]):
    train(recipe, settings)
"""


@pytest.fixture(scope="module")
def toy(factbench_cache):
    from factbench import models
    from factbench.toyworld.split import toy_split

    models.load("toy:tiny")  # built (seconds) and cached before the processes start, not by both at once
    toy_split("tiny")
    return factbench_cache


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def log_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "training_log.jsonl").read_text().splitlines()]


def check_same_run(two: Path, one: Path, *, loss_rtol: float, weights_atol: float) -> dict:
    """Two-process output `two` against one-process output `one`; returns the measured differences."""
    assert files(two) == files(one)
    card2, card1 = (json.loads((f / "recipe_card.json").read_text()) for f in (two, one))
    assert (card2["world_size"], card2["ddp_backend"], card1["world_size"], card1["ddp_backend"]) == (2, "gloo", 1, None)
    assert card2["global_batch_size"] == card1["global_batch_size"] == 8
    assert card2["config"]["use_cpu"] is True and card2["config"]["ddp_find_unused_parameters"] is False
    assert [(s["stage"], s["steps"], s["examples"]) for s in card2["stages"]] == [
        (s["stage"], s["steps"], s["examples"]) for s in card1["stages"]]
    measured = {"loss": [], "weights": 0.0}
    for sub in ["", *(["stage1"] if (two / "stage1").is_dir() else [])]:
        rows2, rows1 = log_rows(two / sub), log_rows(one / sub)
        assert [r["step"] for r in rows2] == [r["step"] for r in rows1]  # one row per evaluation, written once
        for r2, r1 in zip(rows2, rows1, strict=True):
            assert {k: v for k, v in r2.items() if "accuracy" in k} == {k: v for k, v in r1.items() if "accuracy" in k}
            if r1["loss"] is not None:
                measured["loss"].append(abs(r2["loss"] - r1["loss"]) / r1["loss"])
                assert r2["loss"] == pytest.approx(r1["loss"], rel=loss_rtol)
    assert card2["final"] == log_rows(two)[-1]
    w2, w1 = load_file(two / "model.safetensors"), load_file(one / "model.safetensors")
    measured["weights"] = max((w2[k] - w1[k]).abs().max().item() for k in w1)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=0, atol=weights_atol)
    return measured


def test_sft_on_two_processes_is_one_process_with_the_same_global_batch(toy, tmp_path):
    settings = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in (TOY | TWO).items()]
    done = torchrun(["-m", "factbench.cli", "train", "--recipe", "sft", "--config", "toy",
                     f"output_dir={tmp_path / 'two'}", *settings])
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in done.stderr  # real DDP, not two lone runs
    assert "find_unused_parameters=True" not in done.stderr
    assert done.stdout.count("wrote the model, training_log.jsonl and recipe_card.json") == 1  # one summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two"]  # no temporary folder left beside it
    train("sft", TOY | ONE | {"output_dir": str(tmp_path / "one")})
    train("sft", TOY | BIG | {"output_dir": str(tmp_path / "big")})
    exact = check_same_run(tmp_path / "two", tmp_path / "one", **SAME)
    close = check_same_run(tmp_path / "two", tmp_path / "big", **BIG_BATCH)
    print(f"DDP vs accumulation: {exact}; DDP vs one batch of 8: {close}")
    rows = log_rows(tmp_path / "two")
    assert [r["step"] for r in rows] == [0, 4] and rows[-1]["heldout_questions"] == 8


def test_every_other_recipe_on_two_processes(toy, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    jobs = [(name, recipe, TOY | TWO | extra | {"output_dir": str(tmp_path / "two" / name)})
            for name, (recipe, extra) in OTHERS.items()]
    torchrun([str(driver), json.dumps(jobs)], timeout=600)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(OTHERS)
    for name, (recipe, extra) in OTHERS.items():
        train(recipe, TOY | ONE | extra | {"output_dir": str(tmp_path / "one" / name)})
        measured = check_same_run(tmp_path / "two" / name, tmp_path / "one" / name, **SAME)
        print(f"{name}: {measured}")
    cached = json.loads((tmp_path / "two" / "selfdistill-cached" / "recipe_card.json").read_text())
    assert cached["distillation"]["teacher_cache"] == "topk"
    assert [s["stage"] for s in cached["stages"]] == ["stage1-teacher", "stage2-student"]


def test_paper_scale_configs_load_with_their_distributed_settings():
    """The bundled GPU configs load by name and validate, with DeepSpeed ZeRO-2 (llama3.1_8b) and with
    FSDP switched on (qwen2.5_1.5b); the sharded runs themselves need GPUs and are not run here."""
    import importlib.util

    import yaml

    from factbench.errors import FactbenchError
    from factbench.recipes import load_config
    from factbench.recipes.config import find_config

    llama = yaml.safe_load(find_config("llama3.1_8b").read_text())
    assert llama["deepspeed"]["zero_optimization"]["stage"] == 2 and llama["gradient_checkpointing"] is True
    if importlib.util.find_spec("deepspeed") is None:  # one line naming the missing package, not a traceback
        with pytest.raises(FactbenchError, match="deepspeed"):
            load_config("llama3.1_8b", ["bf16=false"])
    else:
        assert load_config("llama3.1_8b", ["bf16=false"]).deepspeed
    assert load_config("llama3.1_8b", ["bf16=false", "deepspeed=null"]).per_device_train_batch_size == 4
    qwen = load_config("qwen2.5_1.5b", ["bf16=false", "fsdp=full_shard auto_wrap", "eval_each_epoch=false",
                                        "fsdp_config={\"transformer_layer_cls_to_wrap\": [\"Qwen2DecoderLayer\"]}"])
    assert qwen.fsdp and qwen.fsdp_config["transformer_layer_cls_to_wrap"] == ["Qwen2DecoderLayer"]
    assert load_config("qwen2.5_1.5b.yaml", ["bf16=false"]).learning_rate == pytest.approx(5e-5)
