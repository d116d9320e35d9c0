"""The untrained base model's answers, kept in the cache and reused by the next fine-tune of it."""

import json
from pathlib import Path

import pytest
import torch
from test_recipes import config, tiny_world

from factbench.engines.base import GenerationParams
from factbench.recipes import train
from factbench.recipes.base_answers import FOLDER, ReusingEngine, weights_sha256


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("base-answers"))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACTBENCH_CACHE", str(folder))
    return folder / FOLDER


def run(world, out, **extra):
    settings = {"eval_protocols": ["4-shot", "0-shot"], "eval_limit": None} | extra
    out = train("sft", config(world, out, **settings)).output_dir
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    outcomes = [json.loads(line) for line in (out / "eval_outcomes.jsonl").read_text().splitlines()]
    return log, outcomes


def test_the_second_fine_tune_reads_the_base_answers_and_gets_the_same_outcomes(world, tmp_path, cache):
    first_log, first = run(world, tmp_path / "a")
    kept = sorted(cache.glob("*.json"))
    assert first_log[0]["base_answers"] == "generated" and len(kept) == 2 * 3  # 2 protocols x 3 sets
    second_log, second = run(world, tmp_path / "b", seed=1)  # another seed: the same base before step 1
    assert second_log[0]["base_answers"] == "reused" and sorted(cache.glob("*.json")) == kept
    assert second[:2] == first[:2]  # both protocols' outcomes of the base point
    assert "base_answers" not in first_log[1]  # a trained point is always asked anew


def test_the_grading_is_redone_on_the_kept_completions(world, tmp_path, cache):
    """A kept completion changed by hand changes the reused outcome: the answers are read, not regenerated."""
    _, first = run(world, tmp_path / "a", eval_protocols=["0-shot"])
    from factbench import splits

    fact = splits.load_split(world["split"]).sets["heldout"][0]
    held = [p for p in cache.glob("*.json") if len(json.loads(p.read_text())["completions"]) == len(first[0]["sets"]["heldout"])]
    for path in held:  # the held-out and the new set may have the same length: change every candidate
        kept = json.loads(path.read_text())
        kept["completions"][0] = [" " + fact["answers"][0]]
        path.write_text(json.dumps(kept))
    _, second = run(world, tmp_path / "b", eval_protocols=["0-shot"])
    assert first[0]["sets"]["heldout"][0] == "0" and second[0]["sets"]["heldout"][0] == "1"
    assert second[0]["sets"]["heldout"][1:] == first[0]["sets"]["heldout"][1:]


def test_a_damaged_file_is_generated_again(world, tmp_path, cache):
    _, first = run(world, tmp_path / "a")
    for n, path in enumerate(sorted(cache.glob("*.json"))):
        path.write_text(['{"schema": 1, "complet', '{"schema": 1, "completions": [["x"]]}', "[]"][n % 3])
    log, second = run(world, tmp_path / "b")
    assert log[0]["base_answers"] == "generated" and second[:2] == first[:2]
    assert all(len(json.loads(p.read_text())["completions"]) > 1 for p in cache.glob("*.json"))  # rewritten


def test_switched_off_nothing_is_kept_or_read(world, tmp_path, cache):
    log, _ = run(world, tmp_path / "a", eval_reuse_base_answers=False)
    assert "base_answers" not in log[0] and not cache.exists()


class WordTokenizer:
    backend_tokenizer, special_tokens_map, pad_token_id = None, {}, 0

    def get_vocab(self):
        return {"a": 0}


class Echo:
    """An engine that answers every prompt with its own length: enough for the keys."""

    def __init__(self, model, batch_size=8):
        self.model, self.batch_size, self.calls, self.tokenizer = model, batch_size, 0, WordTokenizer()

    def describe(self):
        return {"engine": "echo", "model": {"name": "x"}, "dtype": "float32", "device": "cpu"}

    def generate(self, prompts, params):
        self.calls += 1
        return [[str(len(p))] for p in prompts]


def test_the_key_covers_weights_prompts_their_order_settings_and_batch_size(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    params = GenerationParams()
    engine = ReusingEngine(Echo(model), tmp_path)
    key = engine.key(["a", "bb"], params)
    assert engine.key(["a", "bb"], params) == key
    assert engine.key(["bb", "a"], params) != key
    assert engine.key(["a", "bb"], GenerationParams(max_new_tokens=8)) != key
    assert ReusingEngine(Echo(model, batch_size=4), tmp_path).key(["a", "bb"], params) != key
    before = weights_sha256(model)
    with torch.no_grad():
        model.weight[0, 0] += 1e-6  # one weight, one ulp-sized step
    assert weights_sha256(model) != before
    assert ReusingEngine(Echo(model), tmp_path).key(["a", "bb"], params) != key
    assert weights_sha256(model.to(torch.bfloat16)) != weights_sha256(model.to(torch.float32))


def test_an_unwritable_cache_costs_time_not_results(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    inner = Echo(torch.nn.Linear(2, 2))
    engine = ReusingEngine(inner, blocked / "cache")
    assert engine.generate(["abc"], GenerationParams()) == [["3"]]
    assert engine.generate(["abc"], GenerationParams()) == [["3"]] and inner.calls == 2 and engine.generated == 2


def test_the_untrained_base_is_hashed_not_named(world):
    """Two folders holding the same weights share answers; the same folder with other weights does not."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(Path(world["model"]))
    again = AutoModelForCausalLM.from_pretrained(Path(world["model"]))
    assert weights_sha256(model) == weights_sha256(again)
    with torch.no_grad():
        next(again.parameters()).view(-1)[0] += 1.0
    assert weights_sha256(model) != weights_sha256(again)
