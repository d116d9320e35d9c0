"""Score a fine-tuned checkpoint against its base, fact by fact (METHOD.md §3 metrics).

**Where answers come from.** Each side (base, tuned) is one of:

- an lm-eval output folder written with `--log_samples` (`samples_factforget_<set>_<date>.jsonl`,
  usually in a per-model subfolder, beside lm-eval's `results_<date>.json`, which names the model);
- a `factbench eval --sets --out DIR` folder (`samples_factforget_<set>.jsonl` + `summary.json`);
- a model spec (`smollm2-135m`, a model folder, a hub id): factbench then answers the sets itself,
  through exactly the code path of `eval --sets` (`factbench.evaluation`).

**What is checked, and refused with one line naming the difference.** Both sides answered the same
questions of each set, all of them in the split's set (answers from another split are refused);
every prompt is the prompt this factbench builds for that fact (same prompt version, exemplars,
shots), the same for base and tuned (`prompt_hash`); decoding is the protocol's (greedy, at most 16
new tokens, stop at newline); the logged grades are what this factbench's matching gives the
logged completion; lm-eval task versions and factbench answer folders carry this protocol.

**What is measured** (every rate a mean over questions with a seeded bootstrap 95% interval):

| set           | base accuracy | tuned accuracy is called | also                                            |
|---------------|---------------|--------------------------|-------------------------------------------------|
| `heldout`     | yes           | retention                | forgetting = 1 - retention; drop = base - tuned |
| `new`         | yes           | acquisition              | forgotten ÷ acquired                            |
| `known_train` | yes           | task learning            |                                                 |
| `ood`         | yes           | OOD retention            |                                                 |

Per question, base and tuned correctness (exact match, the primary score) make the flip table:
retained (right → right), forgotten (right → wrong), acquired (wrong → right), never known
(wrong → wrong); per set overall, per relation and per SliCK category. Containment (the secondary
score) is reported beside it, never mixed in.

Retention is absolute (of the facts the profile says the base knew), as in the paper; because a
base re-evaluated under another engine or dtype need not score 100% on them, the card also gives
the base's own accuracy now, the drop base − tuned (paired interval), and the retained share of the
facts the base got right in this run.

**Guessable facts.** The headline is on recalled facts (the profile's `known`: HighlyKnown and not
guessable). Splits exclude guessable facts by default; a split made with `include_guessable` has
them in `heldout` / `ood`, and they are scored apart, in the card's `guessable` section.

**Training log** (`--training-log FILE`, written by the recipes): JSON Lines, one row per epoch,
in training order:

    {"epoch": 0, "heldout_accuracy": 0.97}
    {"epoch": 1, "heldout_accuracy": 0.91, "new_accuracy": 0.42}

`epoch` (a number, strictly increasing; 0 = before training, when measured) and
`heldout_accuracy` (in [0, 1], on the held-out known set) are required; `new_accuracy`,
`known_train_accuracy` and `heldout_questions` are optional and kept in the card; other keys are
ignored. Peak-relative forgetting = (peak − final) / peak over `heldout_accuracy`, where final is
the last row: the paper's reading of 15% → 3%.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, data, evaluation, matching, models, prompts, question_sets, sample_logs, stats
from .errors import FactbenchError
from .protocol import TASK_VERSION, generation_kwargs, made_under_other_protocol, protocol_hash, question_protocol
from .splits import Split

FLIPS = ("retained", "forgotten", "acquired", "never_known")
SETS = question_sets.SPLIT_SETS  # heldout, new, known_train, ood
RETENTION_SETS = ("heldout", "ood")  # sets of facts the base knew; guessable ones are scored apart
LOG_OPTIONAL = ("new_accuracy", "known_train_accuracy", "heldout_questions")
_LMEVAL_DATE = re.compile(r"_(\d{4}-\d\d-\d\dT[\d.-]+)\.jsonl?$")


class ScoreError(FactbenchError):
    """Answers, splits or cards that cannot be scored or compared together."""


# ---- one side's answers --------------------------------------------------------------------------

@dataclass
class Answers:
    """One side's answers: per set, per fact id, the completion, its grades and prompt hash."""

    role: str  # "base" or "tuned"
    identity: dict
    sets: dict[str, dict[str, dict]]
    decoding: dict | None = None
    notes: list[str] = field(default_factory=list)


def is_answers_folder(where: str | Path) -> bool:
    """A folder that is not a model folder: it must then hold answers (or it is an error)."""
    path = Path(where)
    return path.is_dir() and not (path / "config.json").is_file()


def read_answers(folder: str | Path, role: str) -> Answers:
    """Answers from an lm-eval `--log_samples` folder or a `factbench eval --sets` folder."""
    folder = Path(folder)
    found = {p.parent for p in folder.rglob("samples_factforget_*.jsonl")}
    if not found:
        raise ScoreError(f"{role} folder {folder} holds no factforget answers (samples_factforget_<set>*.jsonl, "
                         "from lm_eval --log_samples or factbench eval --sets --out)")
    if len(found) > 1:
        # lm-eval writes one subfolder per model under one --output_path: never mix two models' answers.
        names = ", ".join(sorted(str(p.relative_to(folder)) or "." for p in found))
        raise ScoreError(f"{role} folder {folder} holds factforget answers of several runs ({names}); "
                         "pass the folder of one model")
    run_dir = found.pop()
    files = {}
    for name in SETS:
        try:
            files[name] = sample_logs.find(run_dir, question_sets.task_name(name))
        except FactbenchError:
            continue  # this set was not answered
    if not files:
        raise ScoreError(f"{role} folder {run_dir} holds no answers to the split sets ({', '.join(SETS)})")
    sets, decodings = {}, set()
    for name, path in files.items():
        sets[name], decoding = _read_set(path, role)
        decodings.add(json.dumps(decoding, sort_keys=True))
    if len(decodings) > 1:
        raise ScoreError(f"{role} answers in {run_dir} were decoded differently in different sets: {sorted(decodings)}")
    own = all(p.name == f"samples_{question_sets.task_name(s)}.jsonl" for s, p in files.items())
    identity, notes = (_factbench_identity if own else _lmeval_identity)(run_dir, files, role)
    return Answers(role, identity, sets, json.loads(decodings.pop()), notes)


def _read_set(path: Path, role: str) -> tuple[dict[str, dict], dict]:
    """One samples file: the per-id answers (`samples.read`) and the one decoding all its rows used."""
    by_id = sample_logs.read(path)
    rows, decodings = 0, set()
    with open(path) as f:
        for n, line in enumerate(f, 1):
            rows += 1
            try:
                kwargs = json.loads(line)["arguments"]["gen_args_0"]["arg_1"]
            except (ValueError, KeyError, TypeError):
                raise ScoreError(f"{path}:{n} logs no generation arguments (arguments.gen_args_0.arg_1)") from None
            decodings.add(json.dumps(kwargs, sort_keys=True, default=str))
    if rows != len(by_id):
        raise ScoreError(f"{path} has {rows} rows for {len(by_id)} questions (two runs appended into one file?)")
    if len(decodings) != 1:
        raise ScoreError(f"{path} mixes {len(decodings)} different decodings")
    decoding = json.loads(decodings.pop())
    _check_decoding(decoding, f"{role} answers {path.name}")
    missing = [fid for fid, s in by_id.items() if not s["prompt_hash"]]
    if missing:
        raise ScoreError(f"{path} logs no prompt_hash for {missing[0]}: the prompt cannot be checked")
    return by_id, decoding


def _check_decoding(kwargs: dict, what: str) -> None:
    want = generation_kwargs()
    problems = []
    if list(kwargs.get("until") or []) != want["until"]:
        problems.append(f"stop strings {kwargs.get('until')!r} (want {want['until']!r})")
    if kwargs.get("max_gen_toks", want["max_gen_toks"]) != want["max_gen_toks"]:
        problems.append(f"max_gen_toks {kwargs.get('max_gen_toks')} (want {want['max_gen_toks']})")
    if kwargs.get("do_sample") or (kwargs.get("temperature") or 0) > 0:
        problems.append(f"sampling (do_sample={kwargs.get('do_sample')}, temperature={kwargs.get('temperature')}; "
                        "want greedy)")
    if problems:
        raise ScoreError(f"{what} were not decoded under the question protocol: {'; '.join(problems)}")


def _factbench_identity(run_dir: Path, files: dict, role: str) -> tuple[dict, list[str]]:
    identity = {"source": "factbench", "answers": str(run_dir)}
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return identity | {"model": None, "engine": None}, [
            f"{role}: {run_dir} has no summary.json (interrupted run?): model and engine unknown"]
    try:
        summary = json.loads(summary_path.read_text())
        engine = summary["engine"]
    except (ValueError, KeyError, TypeError):
        raise ScoreError(f"{summary_path} is unreadable or not a factbench eval summary") from None
    made_under = summary.get("protocol_hash")
    current = question_protocol()
    if made_under and made_under != protocol_hash(current):
        raise ScoreError(made_under_other_protocol(f"{role} answers in {run_dir}", made_under,
                                                   summary.get("protocol"), current, (role, "now")))
    return identity | {"model": engine.get("model"), "engine": engine, "split": summary.get("split"),
                       "factbench_version": summary.get("factbench_version")}, []


def _lmeval_identity(run_dir: Path, files: dict, role: str) -> tuple[dict, list[str]]:
    """The model lm-eval ran, from its results JSON of the same run (same date suffix) when there is one."""
    identity = {"source": "lm-eval", "answers": str(run_dir)}
    notes = []
    dates = {m.group(1) for p in files.values() if (m := _LMEVAL_DATE.search(p.name))}
    if len(dates) > 1:
        notes.append(f"{role}: the sets come from {len(dates)} different lm-eval runs in {run_dir}")
    results = sorted(run_dir.glob("results_*.json"), key=lambda p: p.name)
    same_run = [p for p in results if (m := _LMEVAL_DATE.search(p.name)) and m.group(1) in dates]
    chosen = (same_run or results or [None])[-1]
    if chosen is None:
        return identity | {"results_file": None, "model": None, "engine": None}, notes + [
            f"{role}: no lm-eval results_*.json beside the samples in {run_dir}: model unknown"]
    try:
        results_json = json.loads(chosen.read_text())
        config = results_json["config"]
    except (ValueError, KeyError, TypeError):
        raise ScoreError(f"{chosen} is unreadable or not an lm-eval results file") from None
    versions = results_json.get("versions") or {}
    for name in files:
        version = versions.get(question_sets.task_name(name))
        if version is not None and float(version) != float(TASK_VERSION):
            raise ScoreError(f"{role} answers come from {question_sets.task_name(name)} version {version}, but this "
                             f"factbench's tasks are version {TASK_VERSION}: rerun lm-eval with this factbench")
    model_args = _model_args(config.get("model_args"))
    pretrained = model_args.get("pretrained") or results_json.get("model_name")
    model = {"name": pretrained, "revision": model_args.get("revision") or config.get("model_revision"),
             "sha": config.get("model_sha") or None}
    if pretrained and (Path(pretrained) / "config.json").is_file():
        # Hashed now, by factbench: links this side to a profile or card of the same weights.
        model["content_sha256"] = models.folder_hash(Path(pretrained))
    split_meta = next((c.get("metadata", {}).get("split") for c in (results_json.get("configs") or {}).values()
                       if isinstance(c, dict)), None)
    engine = {"engine": f"lm-eval {config.get('model')}", "dtype": _short_dtype(config.get("model_dtype")),
              "device": config.get("device"), "batch_size": config.get("batch_size"),
              "lm_eval": results_json.get("lm_eval_version"),
              "transformers": results_json.get("transformers_version")}
    return identity | {"results_file": chosen.name, "model": model, "engine": engine,
                       "lm_eval_model": config.get("model"), "lm_eval_model_args": config.get("model_args"),
                       "task_versions": {n: versions.get(question_sets.task_name(n)) for n in files},
                       "split": split_meta}, notes


def _model_args(args) -> dict:
    """lm-eval logs model_args as given: a dict (Python API) or "k=v,k=v" (command line)."""
    if isinstance(args, dict):
        return {k: str(v) for k, v in args.items()}
    out = {}
    for part in str(args or "").split(","):
        key, _, value = part.partition("=")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


def _short_dtype(dtype) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype else None


def answer_with_model(spec: str, role: str, split: Split, *, engine: str = "hf", revision: str | None = None,
                      dtype: str = "auto", batch_size: int | None = None, limit: int | None = None,
                      same_questions_as: Answers | None = None, save_to: Path | None = None, echo=print) -> Answers:
    """Run the model on the split sets with factbench's engine (as `eval --sets`) and read the answers back.

    With `same_questions_as` (the other side's answers), only the questions that side answered are
    asked: nothing else could be scored, and a limited lm-eval run needs no matching --limit here.
    """
    from .engines import make_engine

    docs = evaluation.set_docs(SETS, split)
    if same_questions_as is not None:
        docs = {name: [d for d in docs[name] if d["id"] in same_questions_as.sets[name]]
                for name in SETS if name in same_questions_as.sets}
    if limit is not None:
        if limit < 1:
            raise ScoreError(f"--limit must be at least 1, got {limit}")
        docs = {name: d[:limit] for name, d in docs.items()}
    echo(f"answering the factforget sets with the {role} model {spec} ...")
    runner = make_engine(engine, spec, revision=revision, dtype=dtype, batch_size=batch_size)
    if save_to is not None:
        evaluation.answer_sets(runner, docs, split, out=save_to, echo=echo)
        return read_answers(save_to, role)
    with tempfile.TemporaryDirectory(prefix="factbench-answers-") as tmp:
        evaluation.answer_sets(runner, docs, split, out=Path(tmp), echo=echo)
        read = read_answers(tmp, role)
    read.identity["answers"] = None  # the answers were not kept
    return read


def check_model_spec(spec: str, role: str, revision: str | None = None) -> None:
    """Fail early (before any model runs) on a side that is neither an answers folder nor a model."""
    if Path(spec).is_file():
        raise ScoreError(f"--{role} {spec} is a file; give an answers folder or a model")
    try:
        where = models.resolve(spec, revision)
    except FactbenchError as e:
        raise ScoreError(f"--{role} {spec} is neither an answers folder (lm-eval --log_samples output or factbench "
                         f"eval --sets --out) nor a model: {e}") from None
    if where["source"] == "hub" and Path(spec).parent.is_dir():
        # "runs/sft" looks like a hub id, but a local runs/ folder says it is a mistyped path.
        raise ScoreError(f"--{role} {spec}: no such folder ({Path(spec).parent} exists, {spec} does not)")


# ---- checks --------------------------------------------------------------------------------------

def check_side_questions(side: Answers, split: Split) -> None:
    """Every answered question is in the split's set of that name."""
    for name, got in side.sets.items():
        in_split = {r["id"] for r in question_sets.set_rows(name, split)}
        foreign = sorted(set(got) - in_split, key=id_order)
        if foreign:
            raise ScoreError(f"{len(foreign)} of the {side.role} model's {len(got)} {name} answers are to questions "
                             f"not in that set of split {split.path} (e.g. {foreign[0]}): they were asked on another "
                             "split; pass that split with --split")


def check_side(side: Answers, split: Split) -> None:
    """One side alone: its questions are the split's, its prompts and grades this factbench's."""
    check_side_questions(side, split)
    for got in side.sets.values():
        for fact in data.get(sorted(got, key=id_order)):
            answer = got[fact.id]
            if answer["prompt_hash"] != _prompt_hash(fact):
                raise ScoreError(f"the {side.role} answers' prompt for {fact.id} is not the prompt this factbench "
                                 "asks (another prompt version, exemplar seed or number of shots)")
            _check_grade(side.role, fact.id, answer, fact.answers)


def _prompt_hash(fact) -> str:
    return hashlib.sha256(prompts.build_prompt(fact, 0).encode()).hexdigest()


def check_answers(base: Answers, tuned: Answers, split: Split) -> dict[str, str]:
    """Refuse mismatched answers; return each set's status ("scored" or why not).

    Checks run from the broadest cause to the narrowest, so the message names the real one:
    another split, then different questions, then base and tuned prompts, then this factbench's.
    """
    status = {}
    for name in SETS:
        in_split = question_sets.set_rows(name, split)
        has = (name in base.sets, name in tuned.sets)
        if not in_split:
            status[name] = "not in split"
        elif has == (False, False):
            status[name] = "not answered"
        elif not all(has):
            status[name] = f"only {'base' if has[0] else 'tuned'} answered"
        else:
            status[name] = "scored"
    if status["heldout"] == "not in split":
        raise ScoreError(f"split {split.path} has no held-out questions: there is nothing to score")
    if status["heldout"] != "scored":
        missing = " and ".join(s.role for s in (base, tuned) if "heldout" not in s.sets)
        raise ScoreError(f"no held-out answers (samples_factforget_heldout*.jsonl) from the {missing} model; "
                         "score needs held-out answers from both")
    for side in (base, tuned):
        check_side_questions(side, split)
    for name in (n for n in SETS if status[n] == "scored"):
        b, t = base.sets[name], tuned.sets[name]
        if set(b) != set(t):
            only_b, only_t = sorted(set(b) - set(t)), sorted(set(t) - set(b))
            raise ScoreError(f"base and tuned answered different {name} questions ({len(b)} vs {len(t)}; "
                             f"{len(only_b)} only in base, {len(only_t)} only in tuned, e.g. {(only_b or only_t)[0]}): "
                             "answer both on the same questions (same split, same --limit)")
        for fid in sorted(b, key=id_order):
            if b[fid]["prompt_hash"] != t[fid]["prompt_hash"]:
                raise ScoreError(f"base and tuned saw different prompts for {fid} (prompt_hash "
                                 f"{b[fid]['prompt_hash'][:12]} vs {t[fid]['prompt_hash'][:12]}): they were asked "
                                 "under different question protocols")
    for side in (base, tuned):
        check_side(side, split)
    return status


def _check_grade(role: str, fid: str, got: dict, gold) -> None:
    em, contains = matching.exact_match(got["completion"], gold), matching.contains(got["completion"], gold)
    if (em, contains) != (got["em"], got["contains"]):
        raise ScoreError(f"the {role} answer to {fid} ({got['completion']!r}) was graded em={got['em']:d} "
                         f"contains={got['contains']:d}, but this factbench grades it em={em:d} "
                         f"contains={contains:d} (matching rule {matching.MATCHING_VERSION}): graded under "
                         "another matching rule, or edited")


# ---- guessable facts -----------------------------------------------------------------------------

def guessable_ids(split: Split) -> tuple[set[str] | None, str]:
    """Which split facts are guessable (from the split's profile), and a note saying how we know."""
    settings = split.manifest.get("settings") or {}
    if not settings.get("include_guessable"):
        return set(), "none: the split excludes guessable facts (made without include_guessable)"
    from . import knowledge

    where = (split.manifest.get("profile") or {}).get("path")
    try:
        profile = knowledge.load_profile(where)
    except (FactbenchError, TypeError):
        return None, (f"unknown: the split includes guessable facts but its profile ({where}) cannot be read; "
                      "guessable and recalled facts are scored together")
    if profile.manifest.get("profile_sha256") != split.manifest["profile"].get("profile_sha256"):
        return None, (f"unknown: the profile at {where} is not the one the split was made from; "
                      "guessable and recalled facts are scored together")
    return {r["id"] for r in profile.rows if r["guessable"]}, "scored apart from recalled facts (split includes them)"


# ---- per-question outcomes and metrics -----------------------------------------------------------

@dataclass
class Outcomes:
    """One set's per-question results, in id order: the join of base and tuned answers."""

    ids: list[str]
    relation: list[str]
    category: list[str | None]
    base: np.ndarray  # exact match, bool
    tuned: np.ndarray
    base_contains: np.ndarray
    tuned_contains: np.ndarray
    guessable: np.ndarray

    def subset(self, mask: np.ndarray) -> Outcomes:
        pick = np.flatnonzero(mask)
        return Outcomes([self.ids[i] for i in pick], [self.relation[i] for i in pick],
                        [self.category[i] for i in pick], self.base[pick], self.tuned[pick],
                        self.base_contains[pick], self.tuned_contains[pick], self.guessable[pick])


def id_order(fid: str) -> tuple:
    relation, split, index = fid.split("/")
    return int(relation[1:]), split, int(index)


def join(name: str, base: Answers, tuned: Answers, split: Split, guessable: set[str] | None) -> Outcomes:
    ids = sorted(base.sets[name], key=id_order)
    category = {r["id"]: r.get("category") for r in question_sets.set_rows(name, split)}
    b, t = base.sets[name], tuned.sets[name]

    def flags(side, key):
        return np.array([side[i][key] for i in ids], dtype=bool)

    return Outcomes(ids, [i.split("/")[0] for i in ids], [category.get(i) for i in ids],
                    flags(b, "em"), flags(t, "em"), flags(b, "contains"), flags(t, "contains"),
                    np.array([i in (guessable or ()) for i in ids], dtype=bool))


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    level: float = 0.95

    def __post_init__(self):
        if self.resamples < 100:
            raise ScoreError(f"--resamples must be at least 100, got {self.resamples}")

    def rate(self, x) -> dict:
        return stats.rate_with_ci(x, resamples=self.resamples, seed=self.seed, level=self.level)

    def paired(self, a, b) -> dict:
        return stats.paired_difference_ci(a, b, resamples=self.resamples, seed=self.seed, level=self.level)


DEFAULT_BOOTSTRAP = Bootstrap()


def flip_cells(base: np.ndarray, tuned: np.ndarray, boot: Bootstrap) -> dict:
    """Counts and shares (with intervals) of retained / forgotten / acquired / never-known questions."""
    cells = {"retained": base & tuned, "forgotten": base & ~tuned, "acquired": ~base & tuned,
             "never_known": ~base & ~tuned}
    return {"questions": len(base)} | {k: {"count": int(v.sum()), "share": boot.rate(v)} for k, v in cells.items()}


def grouped_flips(o: Outcomes, boot: Bootstrap) -> dict:
    def by(keys):
        groups = defaultdict(list)
        for i, k in enumerate(keys):
            groups[k or "none"].append(i)
        return {k: flip_cells(o.base[idx], o.tuned[idx], boot) for k, idx in groups.items()}

    return {"all": flip_cells(o.base, o.tuned, boot),
            "by_relation": dict(sorted(by(o.relation).items(), key=lambda kv: int(kv[0][1:]))),
            "by_category": by(o.category)}


def set_metrics(o: Outcomes, boot: Bootstrap) -> dict:
    """Accuracies, the paired change, the retained share of base-right facts, flips: one set."""
    return {
        "questions": len(o.ids),
        "base_accuracy": boot.rate(o.base),
        "tuned_accuracy": boot.rate(o.tuned),
        "change": boot.paired(o.tuned, o.base),  # tuned - base, in accuracy
        "retained_of_base_right": boot.rate(o.tuned[o.base]),
        "contains": {"base_accuracy": boot.rate(o.base_contains), "tuned_accuracy": boot.rate(o.tuned_contains)},
        "flips": grouped_flips(o, boot),
    }


def complement(rate: dict) -> dict:
    """1 - rate, interval flipped: forgetting from retention."""
    if rate["value"] is None:
        return dict(rate)
    return {"value": 1 - rate["value"], "low": 1 - rate["high"], "high": 1 - rate["low"], "n": rate["n"]}


def negated(diff: dict) -> dict:
    if diff["value"] is None:
        return dict(diff)
    return {"value": -diff["value"], "low": -diff["high"], "high": -diff["low"], "n": diff["n"]}


# ---- training log --------------------------------------------------------------------------------

def read_training_log(path: Path | str) -> dict:
    """The per-epoch log (format in the module docstring) and its peak-relative forgetting."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"training log {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch, accuracy = row["epoch"], row["heldout_accuracy"]
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                     for v in (epoch, accuracy)) and 0 <= accuracy <= 1
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ScoreError(f"{path}:{n} is not a training-log row (needs a number \"epoch\" and "
                             "\"heldout_accuracy\" in [0, 1])")
        if rows and epoch <= rows[-1]["epoch"]:
            raise ScoreError(f"{path}:{n}: epochs must increase (epoch {epoch} after {rows[-1]['epoch']})")
        rows.append({"epoch": epoch, "heldout_accuracy": accuracy} | {k: row[k] for k in LOG_OPTIONAL if k in row})
    if not rows:
        raise ScoreError(f"training log {path} has no rows")
    peak = max(rows, key=lambda r: r["heldout_accuracy"])  # the first epoch reaching it
    final = rows[-1]
    relative = (peak["heldout_accuracy"] - final["heldout_accuracy"]) / peak["heldout_accuracy"] \
        if peak["heldout_accuracy"] > 0 else None
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "epochs": rows,
            "peak": {"epoch": peak["epoch"], "heldout_accuracy": peak["heldout_accuracy"]},
            "final": {"epoch": final["epoch"], "heldout_accuracy": final["heldout_accuracy"]},
            "peak_relative_forgetting": relative}


# ---- the score card ------------------------------------------------------------------------------

def score(base: Answers, tuned: Answers, split: Split, *, training_log: Path | str | None = None,
          boot: Bootstrap = DEFAULT_BOOTSTRAP) -> dict:
    """The score card (see factbench.scorecard for its schema) of tuned against base on split."""
    from . import scorecard

    status = check_answers(base, tuned, split)
    log = read_training_log(training_log) if training_log else None
    guessable, guessable_note = guessable_ids(split)
    notes = [*base.notes, *tuned.notes]
    sets, outcomes, guess_sets = {}, {}, {}
    for name in SETS:
        in_split = len(question_sets.set_rows(name, split))
        entry = {"status": status[name], "in_split": in_split}
        if status[name] == "scored":
            o = join(name, base, tuned, split, guessable)
            outcomes[name] = _compact(o)
            recalled = o.subset(~o.guessable) if name in RETENTION_SETS else o
            entry |= {"ids_sha256": evaluation.ids_sha256(o.ids), "answered": len(o.ids)}
            entry |= set_metrics(recalled, boot)
            if name in RETENTION_SETS and o.guessable.any():
                guess_sets[name] = set_metrics(o.subset(o.guessable), boot)
            if len(o.ids) < in_split:
                notes.append(f"{name}: {len(o.ids)} of the split's {in_split} questions were answered (limited run)")
        elif status[name].startswith("only"):
            notes.append(f"{name}: {status[name]}; not scored")
        sets[name] = entry
    _note_base_model(base, split, notes)
    card = {
        "schema": scorecard.SCHEMA_ID,
        "kind": "factbench score card",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "factbench_version": __version__,
        "task_version": TASK_VERSION,
        "protocol": question_protocol(),
        "protocol_hash": protocol_hash(question_protocol()),
        "split": _split_identity(split),
        "base": _side(base),
        "tuned": _side(tuned) | _recipe_of(tuned),
        "statistics": {"bootstrap_resamples": boot.resamples, "seed": boot.seed, "level": boot.level,
                       "unit": "question"},
        "summary": _summary(sets, log),
        "sets": sets,
        "guessable": {"note": guessable_note, "questions": sum(m["questions"] for m in guess_sets.values()),
                      "sets": guess_sets},
        "training_log": log,
        "outcomes": outcomes,
        "notes": notes,
    }
    if log and card["summary"]["retention"]["value"] is not None:
        r = card["summary"]["retention"]
        if not r["low"] <= log["final"]["heldout_accuracy"] <= r["high"]:
            notes.append(f"the training log's last held-out accuracy ({log['final']['heldout_accuracy']:.3f}) is "
                         f"outside this card's retention interval [{r['low']:.3f}, {r['high']:.3f}]: was it measured "
                         "on other questions or with another engine?")
    scorecard.validate(card)
    return card


def _compact(o: Outcomes) -> dict:
    """Per-question outcomes as '0'/'1' strings aligned with ids: what `compare` pairs on."""
    def bits(x):
        return "".join("1" if v else "0" for v in x)

    return {"ids": o.ids, "base": bits(o.base), "tuned": bits(o.tuned), "base_contains": bits(o.base_contains),
            "tuned_contains": bits(o.tuned_contains), "guessable": bits(o.guessable)}


def _summary(sets: dict, log: dict | None) -> dict:
    def metric(name, key):
        return sets[name][key] if sets[name]["status"] == "scored" else None

    held = sets["heldout"]
    forgotten = held["flips"]["all"]["forgotten"]["count"]
    ratio = None
    if sets["new"]["status"] == "scored":
        acquired = sets["new"]["flips"]["all"]["acquired"]["count"]
        ratio = {"forgotten": forgotten, "heldout_questions": held["questions"], "acquired": acquired,
                 "new_questions": sets["new"]["questions"], "ratio": forgotten / acquired if acquired else None}
    return {
        "retention": held["tuned_accuracy"],
        "forgetting": complement(held["tuned_accuracy"]),
        "base_heldout_accuracy": held["base_accuracy"],
        "heldout_drop": negated(held["change"]),  # base - tuned
        "retained_of_base_right": held["retained_of_base_right"],
        "acquisition": metric("new", "tuned_accuracy"),
        "known_train_accuracy": metric("known_train", "tuned_accuracy"),
        "ood_retention": metric("ood", "tuned_accuracy"),
        "forgotten_per_acquired": ratio,
        "peak_relative_forgetting": log["peak_relative_forgetting"] if log else None,
    }


def _recipe_of(a: Answers) -> dict:
    """How a local fine-tune was made, from the recipe card `factbench train` leaves beside it."""
    model = a.identity.get("model")
    if not isinstance(model, dict) or model.get("source") != "local":
        return {}
    path = Path(model.get("name") or "") / "recipe_card.json"
    try:
        raw = path.read_bytes()
        rc = json.loads(raw)
        c = rc["config"]
        settings = {k: c.get(k) for k in ("learning_rate", "num_train_epochs", "per_device_train_batch_size",
                                           "loss_on", "answer_end", "seed")}
        label = rc["recipe"]
        if rc["recipe"] == "freeze":
            label += f" (trainable={rc['trainable']['trainable']})"
        if rc["recipe"] == "selfdistill":
            settings |= {k: c.get(k) for k in ("distill_lambda", "distill_tau", "teacher", "kl_on", "teacher_cache")}
            label += f" (λ={c['distill_lambda']:g}, τ={c['distill_tau']:g}, KL on {c['kl_on']} tokens)"
    except (ValueError, KeyError, TypeError, OSError):
        return {}
    return {"recipe": {"recipe": rc["recipe"], "label": label, "settings": settings,
                       "recipe_card_sha256": hashlib.sha256(raw).hexdigest()}}


def _side(a: Answers) -> dict:
    digest = hashlib.sha256()
    for name in sorted(a.sets):
        for fid in sorted(a.sets[name]):
            digest.update(f"{name}\t{fid}\t{a.sets[name][fid]['completion']}\n".encode())
    return a.identity | {"decoding": a.decoding, "answers_sha256": digest.hexdigest(), "label": label(a.identity)}


def label(identity: dict) -> str:
    """A short human name for a side: the model's name, and how it was run."""
    model = identity.get("model") or {}
    name = model.get("name") or identity.get("answers") or "unknown model"
    engine = identity.get("engine") or {}
    how = " ".join(str(x) for x in (engine.get("engine"), engine.get("dtype")) if x)
    return f"{name} ({how})" if how else str(name)


def model_key(side: dict) -> str | None:
    """What makes two sides the same model: content hash when known, else name and revision."""
    model = side.get("model") or {}
    if model.get("content_sha256"):
        return f"sha256:{model['content_sha256']}"
    if model.get("sha"):
        return f"hub-sha:{model['sha']}"
    if model.get("name"):
        return f"{model['name']}@{model.get('revision') or 'main'}"
    return None


def _split_identity(split: Split) -> dict:
    m = split.manifest
    return {"path": str(split.path), "protocol_hash": m.get("protocol_hash"), "files": m.get("files"),
            "profile_sha256": (m.get("profile") or {}).get("profile_sha256"),
            "profile_model": (m.get("profile") or {}).get("model"),
            "include_guessable": bool((m.get("settings") or {}).get("include_guessable"))}


def _note_base_model(base: Answers, split: Split, notes: list[str]) -> None:
    """Known labels describe the profiled model: say so when the base is visibly another one."""
    profiled = ((split.manifest.get("profile") or {}).get("model") or {}).get("content_sha256")
    base_hash = ((base.identity.get("model") or {}).get("content_sha256"))
    if profiled and base_hash and profiled != base_hash:
        notes.append("the base model's weights differ from those of the model the split's profile was made for: "
                     "the split's 'known' labels describe that model, not this base")
