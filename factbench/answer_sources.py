"""Where one side's answers come from, and factbench's own way of producing them.

Each side (base, tuned) of a score is one of:

- an lm-eval output folder written with `--log_samples` (`samples_factforget_<set>_<date>.jsonl`,
  usually in a per-model subfolder, beside lm-eval's `results_<date>.json`, which names the model);
- a `factbench eval --sets --out DIR` folder (`samples_factforget_<set>.jsonl` + `summary.json`);
- a model spec (`smollm2-135m`, a model folder, a hub id): factbench then answers the sets itself
  (`answer_with_model`), through exactly the code path of `eval --sets` (`answer_sets`).

`answer_sets` writes lm-eval's per-sample shape (see `factbench.sample_logs`), so an answers
folder written by `eval --sets` reads exactly like one written by `score`, and like lm-eval's
`--log_samples` output. Folder layout: `samples_factforget_<set>.jsonl` per set and
`summary.json` (engine, split, the question protocol and its hash, the decoding, per-set EM /
containment, the run's `run_id` and the files it wrote); the folder is one model's one run,
written whole (`sample_logs.write_folder`). Reading checks that every set was decoded under the
question protocol, that lm-eval task versions and factbench answer folders carry this protocol,
and that a folder does not mix runs: a factbench folder needs its summary.json, which must list
every samples file, whose rows carry its run id; an lm-eval folder must not hold runs of two models.

The only scoring-side module that runs models: engines are imported inside the functions that
need them.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, asking, models, prompts, question_sets, sample_logs
from .consistency import check_decoding
from .errors import FactbenchError, ScoreError
from .files import sha256_file
from .identities import ids_sha256
from .protocol import (
    LMEVAL_COMPATIBLE_VERSIONS,
    LMEVAL_TASK_VERSION,
    TASK_VERSION,
    generation_kwargs,
    generation_params,
    made_under_other_protocol,
    protocol_hash,
    question_protocol,
)

if TYPE_CHECKING:
    from .engines import Engine
    from .splits import Split

SETS = question_sets.SPLIT_SETS  # heldout, new, known_train, ood
_LMEVAL_DATE = re.compile(r"_(\d{4}-\d\d-\d\dT[\d.-]+)\.jsonl?$")


@dataclass
class Answers:
    """One side's answers: per set, per fact id, the completion, its grades and prompt hash."""

    role: str  # "base" or "tuned"
    identity: dict
    sets: dict[str, dict[str, dict]]
    decoding: dict | None = None
    notes: list[str] = field(default_factory=list)


# ---- answers folders -----------------------------------------------------------------------------

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
    own = all(p.name == f"samples_{question_sets.task_name(s)}.jsonl" for s, p in files.items())
    if own:  # one run's folder, checked before its rows are read
        identity, notes = factbench_identity(run_dir, role)
    sets, decodings = {}, set()
    for name, path in files.items():
        sets[name], decoding = _read_set(path, role, identity.get("run_id") if own else None)
        decodings.add(json.dumps(decoding, sort_keys=True))
    if len(decodings) > 1:
        raise ScoreError(f"{role} answers in {run_dir} were decoded differently in different sets: {sorted(decodings)}")
    if own:
        _check_legacy_stats(run_dir, files, sets, role)
    else:
        identity, notes = lmeval_identity(run_dir, files, role)
    return Answers(role, identity, sets, json.loads(decodings.pop()), notes)


def _read_set(path: Path, role: str, run_id: str | None = None) -> tuple[dict[str, dict], dict]:
    """One samples file: the per-id answers (`sample_logs.read`) and the one decoding all its rows used.

    With `run_id` (a factbench folder's summary's), every row must carry it: the file is that run's.
    """
    try:
        by_id = sample_logs.read(path)
    except FactbenchError as e:
        raise ScoreError(str(e)) from None
    rows, decodings, runs = 0, set(), set()
    for n, line in sample_logs.lines(path, ScoreError):
        rows += 1
        try:
            row = json.loads(line)
            kwargs = row["arguments"]["gen_args_0"]["arg_1"]
        except (ValueError, KeyError, TypeError):
            raise ScoreError(f"{path}:{n} logs no generation arguments (arguments.gen_args_0.arg_1)") from None
        decodings.add(json.dumps(kwargs, sort_keys=True, default=str))
        runs.add(row.get("run_id"))
    if rows != len(by_id):
        raise ScoreError(f"{path} has {rows} rows for {len(by_id)} questions (two runs appended into one file?)")
    if run_id is not None and runs != {run_id}:
        raise ScoreError(mixed_runs(role, path, "its rows are not all of the run its summary.json describes"))
    if len(decodings) != 1:
        raise ScoreError(f"{path} mixes {len(decodings)} different decodings")
    decoding = json.loads(decodings.pop())
    check_decoding(decoding, f"{role} answers {path.name}")
    missing = [fid for fid, s in by_id.items() if not s["prompt_hash"]]
    if missing:
        raise ScoreError(f"{path} logs no prompt_hash for {missing[0]}: the prompt cannot be checked")
    return by_id, decoding


def mixed_runs(role: str, path: Path, why: str) -> str:
    """The refusal of an answers folder whose files come from more than one run."""
    return (f"{role} answers folder {path.parent} mixes runs: {path.name}: {why}; an answers folder holds one "
            "model's run: answer the model again into an empty folder (eval --sets --out)")


def factbench_identity(run_dir: Path, role: str) -> tuple[dict, list[str]]:
    """Model, engine and run of a factbench answers folder, from its summary.json.

    Refuses a folder without summary.json, samples files its summary does not list (another run's),
    and answers made under another protocol.
    """
    identity = {"source": "factbench", "answers": str(run_dir)}
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise ScoreError(f"{role} answers folder {run_dir} has samples but no summary.json (an interrupted or "
                         "hand-assembled run?): which model answered is unknown; answer the model again "
                         "(eval --sets --out)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        engine = summary["engine"]
        listed = summary.get("files")
        if listed is not None and not isinstance(listed, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ScoreError(f"{summary_path} is unreadable or not a factbench eval summary") from None
    notes = []
    present = sorted(p for p in run_dir.glob("samples*.jsonl") if p.is_file())
    for path in present:
        if listed is not None and path.name not in listed:
            raise ScoreError(mixed_runs(role, path, "its summary.json does not list it (another run's file?)"))
        entry = listed.get(path.name) if listed is not None else None
        if isinstance(entry, dict) and entry.get("sha256") not in (None, sha256_file(path)):
            notes.append(f"{role}: {path.name} in {run_dir} was changed after the run wrote it")
    if listed is None and isinstance(summary.get("sets"), dict):  # written before summaries listed their files
        for path in present:
            task = path.name.removeprefix("samples_").removesuffix(".jsonl")
            if task.startswith("factforget_") and task != "factforget_audit" and task not in summary["sets"]:
                raise ScoreError(mixed_runs(role, path, f"its summary.json holds no {task} (another run's file?)"))
    made_under = summary.get("protocol_hash")
    current = question_protocol()
    if made_under and made_under != protocol_hash(current):
        raise ScoreError(made_under_other_protocol(f"{role} answers in {run_dir}", made_under,
                                                   summary.get("protocol"), current, (role, "now")))
    return identity | {"model": engine.get("model"), "engine": engine, "split": summary.get("split"),
                       "factbench_version": summary.get("factbench_version"),
                       "run_id": summary.get("run_id")}, notes


def _check_legacy_stats(run_dir: Path, files: dict, sets: dict, role: str) -> None:
    """A summary that lists no files (an older factbench's): each set must match its per-set counts and rates."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    if summary.get("files") is not None:
        return
    for name, path in files.items():
        stats = (summary.get("sets") or {}).get(question_sets.task_name(name)) or {}
        answered = sets[name]
        n = len(answered)
        got = {"questions": n, "em": sum(a["em"] for a in answered.values()) / n,
               "contains": sum(a["contains"] for a in answered.values()) / n}
        for key, value in got.items():
            if key in stats and abs(float(stats[key]) - value) > 1e-9:
                raise ScoreError(mixed_runs(role, path, f"{key} {value:.4g} here, {float(stats[key]):.4g} in "
                                                        "summary.json (another run's file?)"))


def lmeval_identity(run_dir: Path, files: dict, role: str, task_of=question_sets.task_name) -> tuple[dict, list[str]]:
    """The model lm-eval ran, from its results JSON of the same run (same date suffix) when there is one.

    `files` maps a set name (`task_of` gives its task) to its samples file.
    """
    identity = {"source": "lm-eval", "answers": str(run_dir)}
    notes = []
    dates = {m.group(1) for p in files.values() if (m := _LMEVAL_DATE.search(p.name))}
    results = sorted(run_dir.glob("results_*.json"), key=lambda p: p.name)
    same_run = [p for p in results if (m := _LMEVAL_DATE.search(p.name)) and m.group(1) in dates]
    if len(dates) > 1:
        notes.append(f"{role}: the sets come from {len(dates)} different lm-eval runs in {run_dir}")
    # Several lm-eval runs in one folder are fine if they ran one model; the samples of two are not.
    models_run = {_lmeval_model(p, role) for p in (same_run if len(same_run) > 1 else
                                                   results if not same_run else [])}
    if len(models_run) > 1:
        shown = "; ".join(sorted(m for m in models_run))[:300]
        raise ScoreError(f"{role} folder {run_dir} holds lm-eval runs of different models ({shown}): the samples "
                         "cannot be told apart; pass one model's --output_path folder")
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
        task, version = task_of(name), versions.get(task_of(name))
        accepted = LMEVAL_COMPATIBLE_VERSIONS.get(task, (TASK_VERSION, LMEVAL_TASK_VERSION))
        if version is not None and float(version) not in accepted:
            raise ScoreError(f"{role} answers come from {task} version {version}, but this factbench reads "
                             f"version {' or '.join(map(str, accepted))} of it: rerun lm-eval with this factbench")
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
                       "task_versions": {n: versions.get(task_of(n)) for n in files},
                       "split": split_meta}, notes


def _lmeval_model(results: Path, role: str) -> str:
    """The model an lm-eval results file names: model type and its pretrained / model_name argument."""
    try:
        got = json.loads(results.read_text(encoding="utf-8"))
        config = got["config"]
    except (ValueError, KeyError, TypeError):
        raise ScoreError(f"{results} is unreadable or not an lm-eval results file") from None
    args = _model_args(config.get("model_args"))
    name = args.get("pretrained") or args.get("model") or got.get("model_name")
    return f"{config.get('model')} {name}" + (f"@{args['revision']}" if args.get("revision") else "")


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


# ---- answers from a model ------------------------------------------------------------------------

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


def answer_with_model(spec: str, role: str, split: Split, *, engine: str = "hf", revision: str | None = None,
                      dtype: str = "auto", batch_size: int | None = None, limit: int | None = None,
                      same_questions_as: Answers | None = None, save_to: Path | None = None, echo=print,
                      progress: bool = True) -> Answers:
    """Run the model on the split sets with factbench's engine (as `eval --sets`) and read the answers back.

    With `same_questions_as` (the other side's answers), only the questions that side answered are
    asked: nothing else could be scored, and a limited lm-eval run needs no matching --limit here.
    """
    from .engines import make_engine

    docs = set_docs(SETS, split)
    if same_questions_as is not None:
        docs = {name: [d for d in docs[name] if d["id"] in same_questions_as.sets[name]]
                for name in SETS if name in same_questions_as.sets}
    if limit is not None:
        if limit < 1:
            raise ScoreError(f"--limit must be at least 1, got {limit}")
        docs = {name: d[:limit] for name, d in docs.items()}
    echo(f"answering the factforget sets with the {role} model {spec} ...")
    runner = make_engine(engine, spec, revision=revision, dtype=dtype, batch_size=batch_size, progress=progress)
    if save_to is not None:
        answer_sets(runner, docs, split, out=save_to, echo=echo)
        return read_answers(save_to, role)
    with tempfile.TemporaryDirectory(prefix="factbench-answers-") as tmp:
        answer_sets(runner, docs, split, out=Path(tmp), echo=echo)
        read = read_answers(tmp, role)
    read.identity["answers"] = None  # the answers were not kept
    return read


def set_docs(names, split: Split | None, limit: int | None = None) -> dict[str, list[dict]]:
    """The docs of each named set, the first `limit` of each (as `lm_eval --limit` takes them)."""
    if limit is not None and limit < 1:
        raise FactbenchError(f"--limit must be at least 1, got {limit}")
    return {n: question_sets.docs(question_sets.check_set(n), split)[:limit] for n in names}


def find_sets(names, split_dir: Path | str | None, limit: int | None = None,
              split_flag: str = "--split-dir") -> tuple[Split | None, dict[str, list[dict]]]:
    """The split (only when a set needs one) and the docs of each named set; validates everything."""
    names = [question_sets.check_set(s) for s in names]
    needs_split = any(n in question_sets.SPLIT_SETS for n in names)
    split = question_sets.find_split(split_dir, split_flag=split_flag) if needs_split else None
    return split, set_docs(names, split, limit)


def answer_sets(engine: Engine, sets: dict[str, list[dict]], split: Split | None, *, out: Path | None = None,
                echo: Callable[[str], None] = print, positions: dict[str, list[int]] | None = None,
                extra: dict | None = None) -> dict:
    """Answer every set greedily under the question protocol; write samples and summary into `out`.

    Returns the summary (what `summary.json` holds). Empty sets are skipped, as lm-eval would have
    nothing to log for them. `out` is written whole at the end (`sample_logs.write_folder`): one
    model's one run, with its `run_id` in the summary and every row. `positions` (a shard's,
    answer_shards.py) gives each doc's `doc_id`, its place in the whole set (default: its place in
    `sets`); `extra` is added to the summary.
    """
    params_kwargs = generation_kwargs()
    params = generation_params()
    protocol = question_protocol()
    summary = {"engine": engine.describe(), "split": str(split.path) if split else None, "sets": {},
               "factbench_version": __version__, "protocol": protocol, "protocol_hash": protocol_hash(protocol),
               "generation_kwargs": params_kwargs, "question_sets": {}} | (extra or {})
    if out:
        sample_logs.check_out_folder(out, summary["engine"].get("model"))
    files = {}
    for name, docs in sets.items():
        task = question_sets.task_name(name)
        if not docs:
            echo(f"{task}: no questions, skipped")
            continue
        facts = [question_sets.fact_of(d) for d in docs]
        run = asking.answer(engine, facts, params=params)
        where = (positions or {}).get(name) or range(len(docs))
        rows = [sample_logs.record(i, d, prompts.build_prompt(f, 0), r["completion"], r["em"], r["contains"],
                                   params_kwargs) for i, d, f, r in zip(where, docs, facts, run.records)]
        summary["sets"][task] = run.summary()
        summary["question_sets"][task] = ids_sha256(d["id"] for d in docs)
        echo(f"{task:<24} {len(rows):>5} questions  EM {summary['sets'][task]['em']:.3f}  "
             f"contains {summary['sets'][task]['contains']:.3f}")
        files[f"samples_{task}.jsonl"] = rows
    if out:  # every set and the summary appear together, or nothing does
        summary = sample_logs.write_folder(out, files, summary)
        echo(f"wrote samples_<task>.jsonl per set and summary.json into {out}")
    return summary


def evaluate_sets(model: str, names=None, *, split_dir: Path | str | None = None, limit: int | None = None,
                  relations: list[str] | None = None, out: Path | None = None, engine: str = "hf",
                  revision: str | None = None, dtype: str = "auto", batch_size: int | None = None,
                  shard=None, workers: int | None = None, argv: list[str] | None = None,
                  echo: Callable[[str], None] = print) -> dict:
    """`factbench eval --sets`: the factforget questions (default: every set) through factbench's own engine.

    Validates the sets, the split and `out` before a model is loaded (`relations` must be empty:
    each set fixes its questions), then answers as `answer_sets` does and returns its summary.
    With `shard` (a `shards.Shard`), answers that shard of every set into `out`/shards/I-of-N and
    merges when it was the last (answer_shards.py); returns the shard's summary. With `workers`, runs
    the command's `argv` (after `eval`) as that many local shard processes and returns the merged summary.
    """
    from . import answer_shards
    from .engines import make_engine

    names = [question_sets.check_set(s) for s in (names or question_sets.SETS)]
    if relations:
        raise FactbenchError("--relations does not apply to --sets (each set fixes its questions)")
    split, sets = find_sets(names, split_dir, limit)  # validate all before loading a model
    if workers:
        from . import shards
        from . import workers as local

        answer_shards.check_out(out, shards.Shard(0, workers), models.resolve(model, revision))
        return local.eval_sets(workers, out, argv or [])
    if shard is not None:
        answer_shards.check_out(out, shard, models.resolve(model, revision))
    else:
        sample_logs.check_out_folder(out, models.resolve(model, revision) if out else None)
    runner = make_engine(engine, model, revision=revision, dtype=dtype, batch_size=batch_size)
    if shard is not None:
        return answer_shards.answer_shard(runner, sets, split, shard, out, echo=echo)
    return answer_sets(runner, sets, split, out=out, echo=echo)
