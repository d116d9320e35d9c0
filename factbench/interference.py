"""`factbench interference`: the semantic-overlap probe (METHOD.md §5).

Does fine-tuning on new facts make a model forget facts it knew *because the new facts' subjects
look like entities it knows*? The probe fine-tunes the base model on synthetic facts of one
relation (factbench.synthetic) whose subjects are either **name-like** (recombined tokens of real
place names) or **UUID strings**, at several sizes and with several recipes, and measures on the
facts the base model knew:

- **forgetting**: base accuracy − fine-tuned accuracy on them (greedy 4-shot, the question
  protocol of every factbench score), a paired bootstrap 95% interval over the facts;
- **drift**: 1 − cos of each fact's subject representation at a middle layer, base vs fine-tuned
  (factbench.representations), mean and bootstrap 95% interval;
- **learned**: accuracy on (up to `new_limit` of) the synthetic facts trained on, under the same
  4-shot protocol, so that a recipe that forgets nothing because it learned nothing shows as such.

The paper reports name-like keys forgetting 38–41% of held-out known facts at 10⁶ facts and UUID
keys 0–4%, with drift rising with name-like keys; this command measures the same contrast at
whatever scale the machine allows, and says how large the difference is (name-like − UUID, paired
over the same facts).

**The known facts** are every fact of the base model's split it knew: `heldout.jsonl`, the Known
rows of `train.jsonl` and `ood.jsonl` (here nothing trains on any of them; the training data is
the synthetic facts alone). `heldout_limit` takes a seeded sample.

**Training** is `factbench.recipes.train` with a bundled config (`toy` for toy worlds,
`smollm2_demo` otherwise) and these settings on top: the synthetic split as `split_dir`, held-out
evaluation only at the end (per-epoch evaluation is opt-in: `eval_each_epoch=true`), and

- `selfdistill`: `teacher=base`, the base model as the frozen teacher, because the training data
  holds no Known facts for a stage-1 teacher to learn the answer format from; **[ours]**
- toy worlds: `answer_end=newline`, because a toy world never saw eos after an answer and learning
  it costs held-out accuracy whatever the keys (recipes/config.py). **[ours]**

Anything else is a `KEY=VALUE` override (`overrides`). `known-only` has nothing to train on here.

**Output folder**: `settings.json` (what fixes the results), `facts/<keys>-<size>/` (the synthetic
split folders, with manifest and checksums), `base.json` (the base model's answers),
`runs/<recipe>-<keys>-<size>/` (`result.json`, written last, plus the recipe's training log and
card; the weights are deleted after measuring unless `keep_models`), and the summary:
`interference.json` (every number with n and interval, the settings and the command),
`interference.md` and `interference.png`. A rerun with the same settings reuses every finished
condition and runs only the missing ones; other settings in the same folder are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import __version__, asking, data, models, question_sets, representations, splits, stats, synthetic
from .errors import FactbenchError
from .files import atomic_path, write_json, write_text
from .protocol import generation_params
from .scorecard import pct, points

SCHEMA = 1
DEFAULT_SIZES = (100, 300)
DEFAULT_NEW_LIMIT = 200
SET_BY_INTERFERENCE = ("model", "split_dir", "output_dir")
RECIPE_LABELS = {"sft": "SFT", "selfdistill": "self-distillation", "freeze": "freeze", "l2anchor": "L2 anchor"}


@dataclass(frozen=True)
class Experiment:
    """What `factbench interference` runs; the conditions are recipes × keys × sizes."""

    model: str = models.DEFAULT_MODEL
    recipes: tuple[str, ...] = ("sft",)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    keys: tuple[str, ...] = tuple(synthetic.KEY_KINDS)
    relation: str = "P17"
    seed: int = 0
    config: str | None = None  # recipe config; None: `toy` for toy worlds, `smollm2_demo` otherwise
    overrides: tuple[str, ...] = ()  # KEY=VALUE recipe settings on top
    split: str | None = None  # the base model's split; None: bundled (SmolLM2) or the toy world's
    heldout_limit: int | None = None
    new_limit: int = DEFAULT_NEW_LIMIT
    layer: int | None = None
    dtype: str = "auto"
    keep_models: bool = False
    command: str | None = field(default=None, compare=False)

    def __post_init__(self):
        for name in ("recipes", "sizes", "keys", "overrides"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        from .recipes.runner import find_recipe

        if not self.recipes:
            raise FactbenchError("no recipe given")
        for r in self.recipes:
            find_recipe(r)
            if r == "known-only":
                raise FactbenchError("recipe known-only trains on Known facts only, and this probe trains on "
                                     "synthetic facts only: there is nothing for it to train on")
        synthetic.check_kinds(self.keys)
        data.check_relations([self.relation])
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise FactbenchError(f"--sizes must be whole numbers of at least 1, got {list(self.sizes)}")
        if self.heldout_limit is not None and self.heldout_limit < 1:
            raise FactbenchError(f"--heldout must be at least 1, got {self.heldout_limit}")
        if self.new_limit < 0:
            raise FactbenchError(f"--new-limit must be 0 or more, got {self.new_limit}")
        for key in self.user_overrides():
            if key in SET_BY_INTERFERENCE:
                raise FactbenchError(f"{key} is set by interference itself (use --model; the split and output "
                                     "folder are made per condition)")

    @property
    def is_toy(self) -> bool:
        return self.model == "toy" or self.model.startswith("toy:")

    @property
    def config_name(self) -> str:
        return self.config or ("toy" if self.is_toy else "smollm2_demo")

    def user_overrides(self) -> dict:
        from .recipes.config import parse_overrides

        return parse_overrides(list(self.overrides))

    def conditions(self) -> list[tuple[str, str, int]]:
        return [(r, k, n) for r in self.recipes for n in sorted(set(self.sizes)) for k in self.keys]


def with_command(exp: Experiment, out: Path | str) -> Experiment:
    """`exp` with the command line that runs it (recorded in the results, shown in the table)."""
    parts = ["factbench", "interference", "--model", exp.model, "--recipe", *exp.recipes,
             "--sizes", *map(str, exp.sizes)]
    rest = []
    for item in exp.overrides:  # the settings that have their own flags are shown with them
        key, _, value = item.partition("=")
        flag = {"num_train_epochs": "--epochs", "learning_rate": "--lr", "per_device_train_batch_size": "--batch-size"}
        if key.strip() in flag:
            parts += [flag[key.strip()], value]
        else:
            rest.append(item)
    defaults = Experiment()
    for flag, value, default in (("--keys", list(exp.keys), list(defaults.keys)), ("--relation", exp.relation, "P17"),
                                 ("--seed", exp.seed, 0), ("--config", exp.config, None), ("--split", exp.split, None),
                                 ("--heldout", exp.heldout_limit, None), ("--new-limit", exp.new_limit,
                                                                          DEFAULT_NEW_LIMIT),
                                 ("--layer", exp.layer, None), ("--dtype", exp.dtype, "auto"),
                                 ("--set", rest, [])):
        if value != default:
            parts += [flag, *(map(str, value) if isinstance(value, list) else [str(value)])]
    if exp.keep_models:
        parts.append("--keep-models")
    parts += ["--out", str(out)]
    return replace(exp, command=shlex.join(parts))


def condition_name(recipe: str, kind: str, size: int) -> str:
    return f"{recipe}-{kind}-{size}"


# ---- settings, checked before any work ----------------------------------------------------------

def shared_settings(exp: Experiment) -> dict:
    """The settings interference puts on top of the recipe config for every condition (paths aside)."""
    settings = {"model": exp.model, "seed": exp.seed, "eval_sets": ["heldout"], "eval_each_epoch": False,
                "eval_before_training": False, "save_model": True}
    if exp.is_toy:
        settings["answer_end"] = "newline"
    return settings


def recipe_settings(exp: Experiment, recipe: str, split_dir: Path, out_dir: Path) -> dict:
    """The recipe's settings on top of its config, for one condition."""
    settings = shared_settings(exp) | {"split_dir": str(split_dir), "output_dir": str(out_dir)}
    if recipe == "selfdistill":
        settings["teacher"] = "base"
    return settings | exp.user_overrides()


def effective_settings(exp: Experiment) -> dict:
    """The values every condition trains with (config file, interference's, the user's), paths left out.

    Values rather than the file's hash, so that a reworded comment in a bundled config does not make
    finished conditions look foreign, while a changed learning rate does.
    """
    import yaml

    from .recipes.config import find_config

    values = yaml.safe_load(find_config(exp.config_name).read_text()) or {}
    merged = values | shared_settings(exp) | exp.user_overrides()
    return {k: merged[k] for k in sorted(merged) if k not in ("split_dir", "output_dir")}


def base_split(model: str, split: str | Path | None = None) -> splits.Split:
    """The base model's split: `split`, else the bundled SmolLM2 split or the toy world's own."""
    if split:
        return question_sets.find_split(split, split_flag="--split")
    where = models.resolve(model)
    if where["source"] == "toy":
        from .toyworld import toy_split

        return question_sets.find_split(toy_split(where["preset"]), split_flag="--split")
    if where["source"] == "bundled":
        return question_sets.find_split(None, split_flag="--split")
    raise FactbenchError(f"which facts does {model} know? pass --split DIR, a split made from its knowledge "
                         "profile (`factbench probe`, then `factbench split`)")


def known_rows(split: splits.Split, limit: int | None, seed: int) -> list[dict]:
    """Every fact of the split the base model knew (held-out, Known training and OOD rows), or a sample."""
    rows, seen = [], set()
    for row in [*split.sets["heldout"], *(r for r in split.sets["train"] if r.get("kind") == "known"),
                *split.sets["ood"]]:
        if row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    if not rows:
        raise FactbenchError(f"split {split.path} holds no facts the base model knew")
    facts = asking.pick_questions(data.get(r["id"] for r in rows), limit, seed)
    chosen = {f.id for f in facts}
    return [r for r in rows if r["id"] in chosen]


def identity(exp: Experiment, split: splits.Split, model_identity: dict) -> dict:
    """Everything that fixes a condition's result except the condition itself: reruns must match it."""
    return {
        "schema": SCHEMA,
        "model": model_identity,
        "base_split": {"path": str(split.path),
                       "manifest_sha256": hashlib.sha256((split.path / "manifest.json").read_bytes()).hexdigest()},
        "relation": exp.relation, "seed": exp.seed, "synthetic_version": synthetic.SYNTHETIC_VERSION,
        "recipe_config": exp.config_name, "recipe_settings": effective_settings(exp),
        "heldout_limit": exp.heldout_limit, "new_limit": exp.new_limit,
        "layer": exp.layer, "dtype": exp.dtype,
        "question_protocol_hash": split.manifest.get("protocol_hash"),
    }


def check_settings(out: Path, ident: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            raise FactbenchError(f"{path} is not valid JSON; delete {out} or choose another --out") from None
        if saved != ident:
            diff = sorted(k for k in set(saved) | set(ident) if saved.get(k) != ident.get(k))
            raise FactbenchError(f"{out} holds results made with other settings ({', '.join(diff)} differ); "
                                 "choose another --out, or delete it to start over")
    elif out.exists() and any(out.iterdir()):
        raise FactbenchError(f"{out} already holds files that are not an interference run; choose another --out")


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
        "base_split": {"path": str(base.path),
                       "manifest_sha256": hashlib.sha256((base.path / "manifest.json").read_bytes()).hexdigest()},
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

    from .engines import engine_for

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
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt"):
            p.unlink()


# ---- the experiment -----------------------------------------------------------------------------

def run(exp: Experiment, out: Path | str, echo: Callable[[str], None] = print) -> dict:
    """Run every missing condition of `exp` into `out`, then write and return the summary."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from . import recipes
    from .recipes.config import load_config

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FactbenchError(f"--out {out} is a file; give a folder")
    split = base_split(exp.model, exp.split)
    known = known_rows(split, exp.heldout_limit, exp.seed)
    for recipe in exp.recipes:  # every recipe's settings must be valid before anything runs
        load_config(exp.config_name, recipe_settings(exp, recipe, out / "facts", out / "runs" / "check"))
    model_path, model_identity = models.model_folder(exp.model)
    representations.check_layer(AutoConfig.from_pretrained(model_path), exp.layer)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pool = {kind: synthetic.generate(kind, max(exp.sizes), relation=exp.relation, seed=exp.seed, tokenizer=tokenizer)
            for kind in exp.keys}
    ident = identity(exp, split, model_identity)
    check_settings(out, ident)
    out.mkdir(parents=True, exist_ok=True)
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
            tuned = AutoModelForCausalLM.from_pretrained(folder / "model")
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
    write_json(out / "interference.json", summary)
    write_text(out / "interference.md", render(summary))
    with atomic_path(out / "interference.png") as tmp:
        tmp.write_bytes(plot_png(summary))
    return summary


def _finished(out: Path, condition: tuple[str, str, int], ident: dict) -> bool:
    path = out / "runs" / condition_name(*condition) / "result.json"
    try:
        return json.loads(path.read_text())["identity"] == ident
    except (OSError, ValueError, KeyError):
        return False


def _load_base(out: Path, ident: dict, known: list[data.Fact], new: dict[str, list[data.Fact]]) -> dict | None:
    """base.json when it answers exactly these questions under these settings."""
    try:
        base = json.loads((out / "base.json").read_text())
    except (OSError, ValueError):
        return None
    answers = base.get("answers", {})
    wanted = {"heldout": [f.id for f in known]} | {k: [f.id for f in v] for k, v in new.items() if v}
    if base.get("identity") != ident or any(answers.get(k, {}).get("ids") != ids for k, ids in wanted.items()):
        return None
    return base


# ---- numbers ------------------------------------------------------------------------------------

def condition_summary(result: dict, base: dict, new_answers: list[str] | None = None) -> dict:
    """Every number of one condition, each with n and a 95% interval (paired over the same facts).

    `new_answers`, the gold answers of the synthetic facts asked, adds the share of the most common
    one: what a model that learned no fact but always answers the majority country would score.
    """
    base_em = base["answers"]["heldout"]["em"]
    tuned_em = result["answers"]["heldout"]["em"]
    kind = result["keys"]
    learned = result["answers"].get(kind, {"ids": [], "em": []})
    base_new = base["answers"].get(kind, {"em": []})["em"][:len(learned["em"])]
    by_relation = {}
    relations = [fid.split("/")[0] for fid in base["answers"]["heldout"]["ids"]]
    for rel in sorted(set(relations), key=lambda r: int(r[1:])):
        idx = [i for i, r in enumerate(relations) if r == rel]
        by_relation[rel] = {"forgetting": stats.paired_difference_ci([base_em[i] for i in idx],
                                                                     [tuned_em[i] for i in idx]),
                            "drift": stats.rate_with_ci([result["drift"][i] for i in idx])}
    return {
        "recipe": result["recipe"], "keys": kind, "size": result["size"],
        "learned": stats.rate_with_ci(learned["em"]),
        "majority_answer": _majority(new_answers[:len(learned["em"])]) if new_answers else None,
        "base_on_new": stats.rate_with_ci(base_new),
        "heldout_accuracy": stats.rate_with_ci(tuned_em),
        # base − tuned accuracy on the same facts: positive = forgotten
        "forgetting": stats.paired_difference_ci(base_em, tuned_em),
        "forgotten_of_base_right": stats.rate_with_ci([not t for b, t in zip(base_em, tuned_em) if b]),
        # the bootstrap of a mean works for any values, not only 0/1 outcomes
        "drift": stats.rate_with_ci(result["drift"]),
        # the known facts of the synthetic facts' own relation, where interference should be strongest
        "same_relation": by_relation.get(result["identity"]["relation"]),
        "by_relation": by_relation,
        "training_seconds": result["training"]["seconds"],
    }


def summarize(exp: Experiment, out: Path, base: dict) -> dict:
    results = {}
    for c in exp.conditions():
        results[c] = json.loads((out / "runs" / condition_name(*c) / "result.json").read_text())
    rows = [condition_summary(r, base, _trained_answers(out, r["keys"], r["size"])) for r in results.values()]
    gaps = []
    if {"namelike", "uuid"} <= set(exp.keys):
        for recipe in exp.recipes:
            for size in sorted(set(exp.sizes)):
                name, uid = results[(recipe, "namelike", size)], results[(recipe, "uuid", size)]
                gaps.append({
                    "recipe": recipe, "size": size,
                    # forgetting(name-like) − forgetting(UUID) = UUID accuracy − name-like accuracy
                    "extra_forgetting": stats.paired_difference_ci(uid["answers"]["heldout"]["em"],
                                                                   name["answers"]["heldout"]["em"]),
                    "extra_drift": stats.paired_difference_ci(name["drift"], uid["drift"]),
                })
    ident = base["identity"]
    return {
        "schema": SCHEMA, "kind": "factbench interference", "factbench_version": __version__,
        "command": exp.command, "settings": asdict(exp) | {"config": exp.config_name}, "identity": ident,
        "layer": base["layer"],
        "base": {"model": exp.model, "known_facts": len(base["answers"]["heldout"]["em"]),
                 "accuracy": stats.rate_with_ci(base["answers"]["heldout"]["em"])},
        "uuid_spelling": _spelling(out, exp),
        "conditions": rows, "name_like_minus_uuid": gaps,
        "bootstrap": {"resamples": stats.DEFAULT_RESAMPLES, "seed": stats.DEFAULT_SEED, "level": 0.95},
    }


def _trained_answers(out: Path, kind: str, size: int) -> list[str] | None:
    try:
        text = (out / "facts" / f"{kind}-{size}" / "train.jsonl").read_text()
    except OSError:
        return None
    return [json.loads(line)["answer"] for line in text.splitlines()]


def _majority(answers: list[str]) -> dict | None:
    if not answers:
        return None
    answer, count = Counter(answers).most_common(1)[0]
    return {"answer": answer, "share": count / len(answers), "n": len(answers)}


def _spelling(out: Path, exp: Experiment) -> dict | None:
    for size in sorted(set(exp.sizes)):
        try:
            return json.loads((out / "facts" / f"uuid-{size}" / "manifest.json").read_text())["synthetic"][
                "uuid_spelling"]
        except (OSError, ValueError, KeyError):
            continue
    return None


def _num(rate: dict | None, digits: int = 4) -> str:
    if not rate or rate["value"] is None:
        return "–"
    return f"{rate['value']:.{digits}f} [{rate['low']:.{digits}f}, {rate['high']:.{digits}f}]"


def render(summary: dict) -> str:
    """The summary as Markdown: one table of conditions, one of name-like − UUID differences."""
    base = summary["base"]
    lines = [
        "# Interference: name-like vs UUID keys", "",
        f"Base model `{base['model']}`: {base['known_facts']} facts it knew, {pct(base['accuracy'])} answered "
        f"right before fine-tuning. Synthetic {summary['settings']['relation']} facts; drift at layer "
        f"{summary['layer']}. 95% bootstrap intervals; forgetting = base − fine-tuned accuracy on the known facts "
        "(percentage points, paired).", "",
    ]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    relation = summary["settings"]["relation"]
    same_n = next((r["same_relation"]["forgetting"]["n"] for r in summary["conditions"] if r["same_relation"]), 0)
    lines += [f"| recipe | keys | new facts | learned (majority answer) | known facts right | forgetting (pts) | "
              f"forgetting, {relation} facts (pts) | drift (1 − cos) |", "|---|---|---:|---|---|---|---|---|"]
    for r in summary["conditions"]:
        same = points(r["same_relation"]["forgetting"]) if r["same_relation"] else "–"
        majority = f"; {100 * r['majority_answer']['share']:.0f}%" if r.get("majority_answer") else ""
        lines.append(f"| {RECIPE_LABELS.get(r['recipe'], r['recipe'])} | {synthetic.KEY_KINDS[r['keys']]} | "
                     f"{r['size']} | {pct(r['learned'])} (n={r['learned']['n']}{majority}) | "
                     f"{pct(r['heldout_accuracy'])} | {points(r['forgetting'])} | {same} | {_num(r['drift'])} |")
    lines.append(f"\nn = {base['known_facts']} known facts per row ({same_n} of them {relation} facts). Learned: the "
                 "synthetic facts trained on, asked 4-shot like every question; the majority answer's share is what "
                 "always answering the most common answer would score.")
    if summary["name_like_minus_uuid"]:
        lines += ["", "## Name-like minus UUID (paired over the same known facts)", "",
                  "| recipe | new facts | extra forgetting (pts) | extra drift |", "|---|---:|---|---|"]
        for g in summary["name_like_minus_uuid"]:
            lines.append(f"| {RECIPE_LABELS.get(g['recipe'], g['recipe'])} | {g['size']} | "
                         f"{points(g['extra_forgetting'])} | {_num(g['extra_drift'])} |")
    return "\n".join(lines) + "\n"


def plot_png(summary: dict) -> bytes:
    """Forgetting and drift against the number of new facts: name-like vs UUID, one line style per recipe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(9.6, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    colors = {"namelike": "#d62728", "uuid": "#1f77b4"}
    styles = ["-", "--", ":", "-."]
    rows = summary["conditions"]
    sizes = sorted({r["size"] for r in rows})
    series_keys = [(recipe, kind) for recipe in dict.fromkeys(r["recipe"] for r in rows) for kind in colors]
    for ax, metric, label in ((axes[0], "forgetting", "forgetting (base − fine-tuned accuracy)"),
                              (axes[1], "drift", "drift of known subjects (1 − cos)")):
        for i, recipe in enumerate(dict.fromkeys(r["recipe"] for r in rows)):
            for kind in colors:
                series = sorted((r for r in rows if r["recipe"] == recipe and r["keys"] == kind), key=lambda r: r["size"])
                if not series:
                    continue
                # a small sideways shift per series, so that equal values do not hide each other
                shift = 1 + 0.025 * (series_keys.index((recipe, kind)) - (len(series_keys) - 1) / 2)
                xs = [r["size"] * shift for r in series]
                ys = [r[metric]["value"] for r in series]
                err = [[y - r[metric]["low"] for y, r in zip(ys, series)], [r[metric]["high"] - y for y, r in zip(ys, series)]]
                ax.errorbar(xs, ys, yerr=err, color=colors[kind], linestyle=styles[i % len(styles)], marker="o",
                            capsize=3, label=f"{synthetic.KEY_KINDS[kind]}, {RECIPE_LABELS.get(recipe, recipe)}")
        if len(sizes) > 1 and sizes[-1] / sizes[0] >= 10:
            ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("synthetic facts trained on")
        ax.set_ylabel(label)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary['base']['model']} · {summary['settings']['relation']} · layer {summary['layer']}",
                 fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
