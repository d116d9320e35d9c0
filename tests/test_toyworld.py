"""The toy world: a tiny GPT-2 that knows exactly the facts it was pre-trained on."""

import json
from pathlib import Path

import pytest
import torch

from factbench import prompts, toyworld
from factbench.errors import FactbenchError
from factbench.toyworld import ToyWorldConfig

torch.set_num_threads(1)

# Small enough to build in a couple of seconds; it learns nothing, which is fine for checking
# that a build is deterministic and atomic.
MICRO = ToyWorldConfig(relations=("P800",), n_known=12, n_unknown=4, n_embd=32, steps=3, batch_size=2)


def test_tokenizer_round_trips_real_prompts(tiny_world):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_world.model_dir)
    for fact in [*tiny_world.known, *tiny_world.unknown]:
        for prompt_index in range(3):
            prompt = prompts.build_prompt(fact, prompt_index)
            ids = tok(prompt).input_ids
            assert tok.unk_token_id not in ids
            assert tok.decode(ids) == prompt


def test_tokenizer_special_tokens(tiny_world):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_world.model_dir)
    ids = {tok.pad_token_id, tok.eos_token_id, tok.unk_token_id}
    assert None not in ids and len(ids) == 3
    # Nothing is added around a prompt: the model sees exactly the prompt's own tokens.
    assert tok("Q: Where").input_ids == tok.convert_tokens_to_ids(["Q", ":", " ", "Where"])
    # Words outside the world's vocabulary become [UNK]: the world only speaks about its facts.
    assert tok.decode(tok("Q: Where, xyzzy?").input_ids) == "Q: Where, [UNK]?"


def test_world_loads_with_plain_transformers(tiny_world):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    model = AutoModelForCausalLM.from_pretrained(tiny_world.model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_world.model_dir)
    assert isinstance(model, GPT2LMHeadModel)
    assert model.config.vocab_size == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id and model.config.eos_token_id == tok.eos_token_id


def test_world_knows_its_known_facts_and_not_its_unknown_ones(tiny_world):
    assert tiny_world.known_recall > 0.7
    assert tiny_world.unknown_recall < 0.2
    # The saved folder, not only the model in memory at build time, recalls them.
    sample = tiny_world.known[:40]
    assert toyworld.recall(tiny_world.load_model(), tiny_world.load_tokenizer(), sample) > 0.7


def test_known_and_unknown_facts(tiny_world):
    config = tiny_world.config
    known, unknown = tiny_world.known, tiny_world.unknown
    assert (len(known), len(unknown)) == (config.n_known, config.n_unknown)
    assert all(f.split == "train" and f.relation in config.relations for f in [*known, *unknown])
    assert not {f.subject for f in known} & {f.subject for f in unknown}
    questions = [f.question for f in [*known, *unknown]]
    assert len(set(questions)) == len(questions)
    # Spread evenly over the relations.
    assert {r: sum(f.relation == r for f in known) for r in config.relations} == {"P69": 75, "P800": 75}


def test_world_json_records_what_the_world_is(tiny_world):
    record = json.loads((tiny_world.model_dir / "world.json").read_text())
    assert ToyWorldConfig.from_dict(record["config"]) == tiny_world.config
    assert record["known_ids"] == list(tiny_world.known_ids)
    assert record["recall"]["known"] == tiny_world.known_recall
    assert toyworld.load_toy_world(tiny_world.model_dir) == tiny_world


def test_same_config_builds_identical_weights(tmp_path):
    from safetensors.torch import load_file

    a = toyworld.build_toy_world(tmp_path / "a", MICRO)
    b = toyworld.build_toy_world(tmp_path / "b", MICRO)
    weights_a, weights_b = load_file(a.model_dir / "model.safetensors"), load_file(b.model_dir / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert (a.model_dir / "tokenizer.json").read_bytes() == (b.model_dir / "tokenizer.json").read_bytes()
    assert (a.known_ids, a.unknown_ids) == (b.known_ids, b.unknown_ids)


def test_build_leaves_the_callers_random_state_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    toyworld.build_toy_world(tmp_path, MICRO)
    assert torch.equal(torch.rand(3), expected)


def test_cache_returns_the_same_world_without_rebuilding(tiny_world, factbench_cache, monkeypatch):
    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached toy world")

    monkeypatch.setattr(toyworld.build, "build_toy_world", no_rebuild)
    again = toyworld.toy_world(ToyWorldConfig.tiny(), cache_dir=factbench_cache)
    assert again.model_dir == tiny_world.model_dir == Path(factbench_cache) / "toyworld" / ToyWorldConfig.tiny().hash()
    assert again == tiny_world


def test_interrupted_build_leaves_nothing_that_looks_built(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(toyworld.pretraining, "pretrain", interrupted)
    with pytest.raises(KeyboardInterrupt):
        toyworld.toy_world(MICRO, cache_dir=tmp_path)
    assert list((tmp_path / "toyworld").iterdir()) == []


def test_config_hash_follows_every_setting():
    assert ToyWorldConfig.tiny().hash() == ToyWorldConfig.tiny().hash()
    assert ToyWorldConfig.tiny().hash() != ToyWorldConfig(**{**ToyWorldConfig.tiny().to_dict(), "seed": 1}).hash()
    llama = ToyWorldConfig(**{**ToyWorldConfig.tiny().to_dict(), "arch": "llama"})
    assert llama.hash() != ToyWorldConfig.tiny().hash()
    # GPT-2 worlds keep the hash they had before `arch` existed (their cache entries stay valid).
    assert ToyWorldConfig.tiny().hash() == "efcdced5ab6a62fb"


def test_llama_world_builds_and_answers(tmp_path):
    from transformers import AutoModelForCausalLM

    world = toyworld.build_toy_world(tmp_path, ToyWorldConfig(**{**MICRO.to_dict(), "arch": "llama", "n_head": 2}))
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == MICRO.n_layer
    assert 0 <= world.known_recall <= 1


@pytest.mark.parametrize(
    "bad",
    [
        {"n_known": 0},
        {"n_unknown": -1},
        {"steps": 2.5},
        {"lr": 0},
        {"lr": float("nan")},
        {"init_std": -0.1},
        {"relations": ("P17", "P999")},
        {"relations": ()},
        {"n_embd": 100, "n_head": 3},
        {"dev_per_document": 5},
        {"arch": "mamba"},
    ],
)
def test_bad_config_values_raise_one_line_errors(bad):
    with pytest.raises(FactbenchError) as err:
        ToyWorldConfig(**bad)
    assert "\n" not in str(err.value)


def test_presets():
    assert ToyWorldConfig.preset("tiny") == ToyWorldConfig.tiny()
    assert ToyWorldConfig.preset("default") == ToyWorldConfig.default() == ToyWorldConfig()
    assert ToyWorldConfig.preset("demo").arch == "llama"
    with pytest.raises(FactbenchError, match="unknown toy world preset"):
        ToyWorldConfig.preset("huge")


def test_too_many_facts_for_a_relation_is_a_clear_error(tmp_path):
    with pytest.raises(FactbenchError, match="P800 has only"):
        toyworld.build_toy_world(tmp_path, ToyWorldConfig(relations=("P800",), n_known=5000))


def test_too_few_positions_for_the_prompts_is_a_clear_error(tmp_path):
    with pytest.raises(FactbenchError, match="n_positions 64 is too small"):
        toyworld.build_toy_world(tmp_path, ToyWorldConfig(relations=("P800",), n_known=4, n_unknown=2, n_positions=64))


@pytest.mark.parametrize("text", ['{"toyworld_version": 1, "conf', '[1, 2]', '{"config": {}}'])
def test_a_damaged_cached_world_is_built_again(tmp_path, text):
    first = toyworld.toy_world(MICRO, cache_dir=tmp_path)
    (first.model_dir / "world.json").write_text(text)
    with pytest.raises(FactbenchError, match="world.json") as e:
        toyworld.load_toy_world(first.model_dir)
    assert "\n" not in str(e.value)
    again = toyworld.toy_world(MICRO, cache_dir=tmp_path)
    assert (again.config, again.known_ids, again.unknown_ids) == (first.config, first.known_ids, first.unknown_ids)
    assert json.loads((again.model_dir / "world.json").read_text())["config_hash"] == MICRO.hash()
    assert [p.name for p in (tmp_path / "toyworld").iterdir()] == [MICRO.hash()]  # nothing left beside it


def test_a_full_disk_while_building_is_one_write_error(tmp_path, monkeypatch):
    from factbench.errors import WriteError

    def full(*a, **k):  # what safetensors raises when the disk fills (not an OSError)
        raise Exception("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("transformers.PreTrainedModel.save_pretrained", full)
    with pytest.raises(WriteError, match="no space left on the device"):
        toyworld.toy_world(MICRO, cache_dir=tmp_path)
    assert list((tmp_path / "toyworld").iterdir()) == []


def test_a_damaged_cached_toy_split_is_made_again(tiny_world):
    from factbench import splits

    folder = toyworld.toy_split("tiny")
    train = (folder / "train.jsonl").read_bytes()
    (folder / "train.jsonl").write_bytes(train[: len(train) // 2])
    again = toyworld.toy_split("tiny")
    assert again == folder and (folder / "train.jsonl").read_bytes() == train
    splits.load_split(folder)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}")]
