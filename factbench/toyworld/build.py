"""Building a toy world, measuring what it recalls, loading it, and caching builds by config hash.

A build chooses the facts (world.py), pre-trains a model on the known ones (pretraining.py),
measures greedy 4-shot recall of known and unknown facts, and writes a Hugging Face folder plus
`world.json`, last, so that a folder holding it is a complete world.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from .. import data, files, matching, prompts
from ..data import Fact
from ..errors import FactbenchError
from ..protocol import MAX_NEW_TOKENS, generation_params
from . import pretraining
from .world import TOYWORLD_VERSION, ToyWorld, ToyWorldConfig, choose_facts

RECALL_SHOTS = prompts.DEFAULT_SHOTS
RECALL_MAX_NEW_TOKENS = MAX_NEW_TOKENS  # recall is asked under the question protocol


def recall(model, tokenizer, facts: Sequence[Fact]) -> float:
    """Share of facts answered right (normalised exact match) under 4-shot prompt 0, greedy."""
    from ..engines import engine_for

    if not facts:
        return float("nan")
    # fp32 on purpose: the engine would pick bf16 on some CPUs, and change the model in place.
    engine = engine_for(model, tokenizer, dtype="float32", device="cpu")
    params = generation_params()
    completions = engine.generate([prompts.build_prompt(f, 0, k=RECALL_SHOTS) for f in facts], params)
    return sum(matching.exact_match(c[0], f.answers) for c, f in zip(completions, facts, strict=True)) / len(facts)



def build_toy_world(out_dir: str | os.PathLike, config: ToyWorldConfig | None = None, progress=None) -> ToyWorld:
    """Build a toy world into `out_dir` (created; must not hold a world already)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

    config = config or ToyWorldConfig.default()
    out = Path(out_dir)
    if (out / "world.json").exists():
        raise FactbenchError(f"{out} already holds a toy world; choose an empty folder")
    started = time.perf_counter()
    known, unknown = choose_facts(config)
    dev = data.load("dev", config.relations)
    tokenizer = pretraining.build_tokenizer(
        [prompts.format_example(f.question, a) + "\n" for f in [*known, *unknown, *dev] for a in f.answers],
        max_length=config.n_positions,
    )
    # Fail before training, not after: the recall prompts (as long as the training documents)
    # plus the answer must fit the model's positions.
    longest = max(len(tokenizer(prompts.build_prompt(f, 0, k=RECALL_SHOTS)).input_ids) for f in [*known, *unknown])
    if longest + RECALL_MAX_NEW_TOKENS > config.n_positions:
        raise FactbenchError(
            f"toy world: n_positions {config.n_positions} is too small for {RECALL_SHOTS}-shot prompts of up to "
            f"{longest} tokens plus a {RECALL_MAX_NEW_TOKENS}-token answer"
        )
    model_config = pretraining.model_config_for(config, tokenizer) if config.arch != "gpt2" else GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        # Memorising facts is the point, and dropout would only slow it down.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        initializer_range=config.init_std,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # fork_rng: the build is seeded, but must not reseed the caller's global torch generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = GPT2LMHeadModel(model_config) if config.arch == "gpt2" else LlamaForCausalLM(model_config)
        losses = pretraining.pretrain(model, tokenizer, config, known, progress)
    trained = time.perf_counter()
    known_recall = recall(model, tokenizer, known)
    unknown_recall = recall(model, tokenizer, unknown)

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "factbench_version": _factbench_version(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "final_loss": losses[-1],
        "train_seconds": round(trained - started, 2),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    world = ToyWorld(out, config, tuple(f.id for f in known), tuple(f.id for f in unknown), known_recall, unknown_recall, info)
    # world.json goes last: a folder with it is a complete world.
    files.write_json(out / "world.json", _world_record(world))
    return world



def load_toy_world(out_dir: str | os.PathLike) -> ToyWorld:
    folder = Path(out_dir)
    try:
        record = json.loads((folder / "world.json").read_text())
    except FileNotFoundError:
        raise FactbenchError(f"{folder} is not a toy world (no world.json)") from None
    except (OSError, ValueError) as e:
        raise DamagedWorld(f"cannot read {folder / 'world.json'} (truncated?): {e}") from None
    try:
        return ToyWorld(
            model_dir=folder,
            config=ToyWorldConfig.from_dict(record["config"]),
            known_ids=tuple(record["known_ids"]),
            unknown_ids=tuple(record["unknown_ids"]),
            known_recall=record["recall"]["known"],
            unknown_recall=record["recall"]["unknown"],
            info=record.get("info", {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DamagedWorld(f"{folder / 'world.json'} is not a toy world record ({type(e).__name__}: {e}); "
                           "delete the folder to build the world again") from None


class DamagedWorld(FactbenchError):
    """A world.json that does not read as a world (in the cache, the world is built again)."""


def toy_world(config: ToyWorldConfig | None = None, cache_dir: str | os.PathLike | None = None, progress=None) -> ToyWorld:
    """The toy world for `config`, built on first use and then loaded from the cache.

    Worlds live in `<cache>/toyworld/<config hash>` (cache: `cache_dir`, else $FACTBENCH_CACHE,
    else ~/.cache/factbench). A build happens in a temporary folder beside its final place and
    is moved there in one step, so an interrupted build never leaves a folder that looks complete.
    A cached world whose world.json no longer reads (a truncated file) is built again, and replaces
    it only once complete. A full disk is one WriteError line.
    """
    config = config or ToyWorldConfig.default()
    folder = Path(cache_dir or files.cache_dir()) / "toyworld" / config.hash()
    if (folder / "world.json").is_file():
        try:
            return load_toy_world(folder)
        except DamagedWorld:
            pass  # built again below
    with files.atomic_path(folder) as tmp:
        try:
            build_toy_world(tmp, config, progress)
        except (OSError, FactbenchError):
            raise
        except Exception as e:  # safetensors and torch report a full disk as other exceptions
            from ..recipes.runner import disk_error

            cause = disk_error(e, tmp)
            if cause is None:
                raise
            raise cause from None
    return load_toy_world(folder)


def _world_record(world: ToyWorld) -> dict:
    return {
        "toyworld_version": TOYWORLD_VERSION,
        "config": world.config.to_dict(),
        "config_hash": world.config.hash(),
        "known_ids": list(world.known_ids),
        "unknown_ids": list(world.unknown_ids),
        "recall": {
            "known": world.known_recall,
            "unknown": world.unknown_recall,
            "how": f"greedy, {RECALL_SHOTS}-shot prompt 0 ({prompts.PROMPT_VERSION}), stop at newline, "
            f"at most {RECALL_MAX_NEW_TOKENS} new tokens, exact match ({matching.MATCHING_VERSION})",
        },
        "info": world.info,
    }


def _factbench_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("factbench")
    except PackageNotFoundError:
        return None
