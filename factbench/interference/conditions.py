"""Running the conditions of an `Experiment` (recipe × keys × size) and measuring each model.

Per condition: the synthetic facts as a split folder (`facts/<keys>-<size>/`), a recipe run
(`factbench.recipes.train`) into `runs/<recipe>-<keys>-<size>/model/`, then the fine-tuned model
measured like the base (`measure`: subject representations, greedy 4-shot answers) and
`result.json` written last. Models come from `factbench.models.load`, the base by its spec and
each fine-tune by its folder.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__, asking, data, models, representations, splits, stats, synthetic
from ..errors import FactbenchError
from ..files import atomic_path, make_dirs, output_lock, write_json, write_text
from ..protocol import generation_params
from ..scorecard import pct, points
from .experiment import (
    RECIPE_LABELS,
    SCHEMA,
    Experiment,
    base_split,
    check_settings,
    condition_name,
    identity,
    known_rows,
    recipe_settings,
)
from .report import _num, condition_summary, plot_png, render, summarize

# ---- the synthetic split folders ----------------------------------------------------------------

def write_fact_split(folder: Path, facts: synthetic.SyntheticFacts, known: list[dict], base: splits.Split) -> Path:
    """A split folder whose train.jsonl is the synthetic facts and whose heldout.jsonl is the known facts."""
    train = [{"id": f.id, "relation": f.relation, "kind": "unknown", "category": "synthetic",
              "question": f.question, "answer": f.answers[0], "answers": list(f.answers), "subject": f.subject,
              "keys": facts.kind} for f in facts.facts]
    manifest = {
        "schema": splits.SPLIT_SCHEMA, "kind": "factbench split", "made_by": f"factbench {__version__} interference",
        "profile": base.manifest.get("profile"), "protocol_hash": base.manifest.get("protocol_hash"),
        "synthetic": facts.describe(),
        "base_split": {"path": str(base.path), "manifest_sha256": splits.manifest_sha256(base)},
        "counts": {"train": len(train), "heldout": len(known), "ood": 0},
    }
    # Kept when identical: an earlier run of the same settings wrote it, and the runs trained on it.
    splits.write_split(folder, {"train": train, "heldout": known, "ood": []}, manifest, keep_identical=True)
    return folder


# ---- measuring one model ------------------------------------------------------------------------

def measure(model, tokenizer, known: list[data.Fact], new: dict[str, list[data.Fact]], layer: int | None,
            dtype: str = "auto") -> tuple[object, dict]:
    """Subject representations of the known facts, and greedy 4-shot answers to known and new facts."""
    import torch

    from ..engines import engine_for

    model.to("cuda" if torch.cuda.is_available() else "cpu")
    states = representations.subject_states(model, tokenizer, [(f.question, f.subject) for f in known], layer)
    engine = engine_for(model, tokenizer, dtype=dtype)
    answers = {"heldout": _answers(engine, known)}
    answers |= {kind: _answers(engine, facts) for kind, facts in new.items() if facts}
    return states, answers


def _answers(engine, facts: list[data.Fact]) -> dict:
    run = asking.answer(engine, facts, params=generation_params())
    return {"ids": [r["id"] for r in run.records], "em": [bool(r["em"]) for r in run.records],
            "completions": [r["completion"] for r in run.records]}


def _drop_weights(folder: Path) -> None:
    for p in folder.rglob("*"):
        # the weights' content hash (written when models.load read them) goes with them
        if p.is_file() and (p.suffix in (".safetensors", ".bin", ".pt") or p.name == models.HASH_MEMO):
            p.unlink()


# ---- the experiment -----------------------------------------------------------------------------

def run(exp: Experiment, out: Path | str, echo: Callable[[str], None] = print) -> dict:
    """Run every missing condition of `exp` into `out`, then write and return the summary.

    One run writes into `out` at a time (a second is refused); every file is written whole.
    """
    from ..recipes.config import load_config

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FactbenchError(f"--out {out} is a file; give a folder")
    for recipe in exp.recipes:  # every recipe's settings must be valid before anything runs (even a split build)
        load_config(exp.config_name, recipe_settings(exp, recipe, out / "facts", out / "runs" / "check"))
    split = base_split(exp.model, exp.split)
    known = known_rows(split, exp.heldout_limit, exp.seed)
    # Tokenizer, config and identity first: the base weights are read only if something is left to measure.
    base_model = models.load(exp.model, weights=False)
    representations.check_layer(base_model.config, exp.layer)
    tokenizer = base_model.tokenizer
    pool = {kind: synthetic.generate(kind, max(exp.sizes), relation=exp.relation, seed=exp.seed, tokenizer=tokenizer)
            for kind in exp.keys}
    ident = identity(exp, split, base_model.identity)
    check_settings(out, ident)
    created = not out.exists()
    make_dirs(out)
    try:
        with output_lock(out, "--out"):
            return _run(exp, out, ident, split, known, tokenizer, pool, echo)
    except BaseException:
        if created and out.is_dir() and not [p for p in out.iterdir() if p.name != ".lock"]:
            shutil.rmtree(out, ignore_errors=True)  # nothing written yet: leave no empty folder behind
        raise


def _run(exp: Experiment, out: Path, ident: dict, split, known: list[dict], tokenizer, pool: dict,
         echo: Callable[[str], None]) -> dict:
    from .. import recipes

    check_settings(out, ident)  # again, under the lock
    write_json(out / "settings.json", ident)

    known_facts = data.get(r["id"] for r in known)
    new_facts = {kind: list(pool[kind].facts[:exp.new_limit]) for kind in exp.keys}
    todo = [c for c in exp.conditions() if not _finished(out, c, ident)]
    base = _load_base(out, ident, known_facts, new_facts)
    base_states = None
    if todo or base is None:
        echo(f"base model {exp.model}: answering {len(known_facts)} known facts and the synthetic facts ...")
        loaded = models.load(exp.model)
        layer = representations.check_layer(loaded.model, exp.layer)
        base_states, answers = measure(loaded.model, tokenizer, known_facts, new_facts, layer, exp.dtype)
        del loaded
        base = {"identity": ident, "layer": layer, "answers": answers}
        write_json(out / "base.json", base)
    echo(f"base model: {pct(stats.rate_with_ci(base['answers']['heldout']['em']))} of {len(known_facts)} known "
         f"facts right; drift read at layer {base['layer']}")

    for i, (recipe, kind, size) in enumerate(todo, 1):
        name = condition_name(recipe, kind, size)
        echo(f"[{i}/{len(todo)}] {RECIPE_LABELS.get(recipe, recipe)}, {synthetic.KEY_KINDS[kind]} keys, "
             f"{size} new facts: training ...")
        folder = out / "runs" / name
        if folder.exists():
            shutil.rmtree(folder)  # an interrupted condition: start it again
        split_dir = write_fact_split(out / "facts" / f"{kind}-{size}",
                                     synthetic.SyntheticFacts(exp.relation, kind, exp.seed, pool[kind].facts[:size],
                                                              pool[kind].spelling), known, split)
        started = time.perf_counter()
        try:
            trained = recipes.train(recipe, exp.config_name, recipe_settings(exp, recipe, split_dir, folder / "model"))
            tuned = models.load(str(folder / "model")).model  # measured with the base tokenizer, as the base is
            learned_on = {kind: new_facts[kind][:size]}
            states, answers = measure(tuned, tokenizer, known_facts, learned_on, base["layer"], exp.dtype)
            del tuned
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # never leave a condition that looks half done
            raise
        result = {"schema": SCHEMA, "identity": ident, "recipe": recipe, "keys": kind, "size": size,
                  "answers": answers, "drift": representations.drift(base_states, states),
                  "training": {"seconds": round(time.perf_counter() - started, 1),
                               "recipe_card": "model/recipe_card.json",
                               "stages": trained.card.get("stages")}}
        if not exp.keep_models:
            _drop_weights(folder / "model")
        write_json(folder / "result.json", result)
        row = condition_summary(result, base)
        echo(f"      learned {pct(row['learned'])}  forgetting {points(row['forgetting'])} pts  "
             f"drift {_num(row['drift'])}")

    summary = summarize(exp, out, base)
    table, png = render(summary), plot_png(summary)  # everything rendered before anything is written
    write_json(out / "interference.json", summary)
    write_text(out / "interference.md", table)
    with atomic_path(out / "interference.png") as tmp:
        tmp.write_bytes(png)
    return summary


def _finished(out: Path, condition: tuple[str, str, int], ident: dict) -> bool:
    path = out / "runs" / condition_name(*condition) / "result.json"
    try:
        return json.loads(path.read_text())["identity"] == ident
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # missing, truncated or another shape: redo
        return False


def _load_base(out: Path, ident: dict, known: list[data.Fact], new: dict[str, list[data.Fact]]) -> dict | None:
    """base.json when it answers exactly these questions under these settings."""
    try:
        base = json.loads((out / "base.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(base, dict) or not isinstance(base.get("answers"), dict):
        return None  # another shape: asked again
    answers = base["answers"]
    wanted = {"heldout": [f.id for f in known]} | {k: [f.id for f in v] for k, v in new.items() if v}
    if base.get("identity") != ident or any(answers.get(k, {}).get("ids") != ids for k, ids in wanted.items()):
        return None
    return base
