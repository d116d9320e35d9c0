"""`factbench eval --sets` cut into N shards that run anywhere, merged into the folder one process writes.

Shard I of N answers every N-th question of each set (by the question's position in the set, so
by question id order) into `OUT/shards/I-of-N/`: a normal answers folder (`sample_logs.write_folder`)
whose rows keep their place in the whole set as `doc_id`, and whose summary adds `shard` (its
number and, per set, the whole set's size and question hash) and the split's manifest hash. A shard
is done when its summary.json is there (the folder appears whole). When all N are, merging checks
that one model (engine, dtype, weights) answered them all under one protocol, decoding, split and
question sets, puts the rows back in the unsharded order and writes OUT as one new run
(`write_folder`, which replaces OUT and its `shards/` whole): the rows equal the unsharded eval's
but for `run_id`, the per-set questions / em / contains are the same, `seconds` is the shards' sum
and the summary adds `merged_from`. The shard and merge mechanics are the probe's (shards.py:
`Shard`, `parse`, `shard_dir`); `--workers N` runs the shards as local processes (workers.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import sample_logs, shards
from .errors import BusyError, DataError, FactbenchError
from .files import output_lock, sha256_file
from .identities import ids_sha256
from .shards import SHARDS, Shard, in_order, shard_dir

if TYPE_CHECKING:
    from .engines import Engine
    from .splits import Split


def _split_sha256(split: Split | None) -> str | None:
    from .splits import manifest_sha256

    return manifest_sha256(split) if split is not None else None


def answer_shard(engine: Engine, sets: dict[str, list[dict]], split: Split | None, shard: Shard, out: Path | str,
                 echo: Callable[[str], None] = print) -> dict:
    """Answer `shard` of every set into OUT/shards/I-of-N; merge into OUT when it was the last one."""
    from .answer_sources import answer_sets

    out = Path(out)
    picked = {name: shard.select(list(enumerate(docs))) for name, docs in sets.items()}
    extra = {"shard": {"index": shard.index, "count": shard.count, "split_sha256": _split_sha256(split),
                       "sets": {_task(name): {"questions": len(docs), "sha256": ids_sha256(d["id"] for d in docs)}
                                for name, docs in sets.items() if docs}}}
    summary = answer_sets(engine, {n: [d for _, d in p] for n, p in picked.items()}, split,
                          out=shard_dir(out, shard), echo=echo, extra=extra,
                          positions={n: [i for i, _ in p] for n, p in picked.items()})
    if merge_if_ready(out):
        echo(f"all {shard.count} shards finished: merged into {out}")
    return summary


def _task(name: str) -> str:
    from .question_sets import task_name

    return task_name(name)


def check_out(out: Path | None, shard: Shard, model: dict | None) -> None:
    """Before a model loads: may shard `shard` of `model` be written under `out`?

    Refused: no --out; `out` already holds a finished (merged) run or other files; its shards/ holds
    shards of another count or another model; the shard's folder holds someone else's answers.
    """
    if out is None:
        raise FactbenchError("--shard needs --out (the folder every shard of the run shares)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FactbenchError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir() if p.name not in (".lock", SHARDS))
        if sample_logs.SUMMARY in held:
            raise FactbenchError(f"--out {out} already holds a finished run's answers: choose another --out for a "
                                 f"sharded run, or remove {out}")
        if held:
            raise FactbenchError(f"--out {out} holds other files than a sharded run's ({held[0]}"
                                 f"{', ...' if len(held) > 1 else ''}): choose another --out")
    for other, summary in finished(out).items():
        if other.count != shard.count:
            raise FactbenchError(f"{out / SHARDS} holds shards of {other.count}, not {shard.count}: run every shard "
                                 f"with one count, or choose another --out")
        if not sample_logs.same_model(summary["engine"].get("model"), model):
            raise FactbenchError(f"{shard_dir(out, other)} holds the answers of another model "
                                 f"({sample_logs.model_label(summary['engine'].get('model'))}), not "
                                 f"{sample_logs.model_label(model)}: choose another --out, or remove {out}")
    sample_logs.check_out_folder(shard_dir(out, shard), model)


def finished(out: Path | str) -> dict[Shard, dict]:
    """The finished shards under OUT/shards/ (their summary.json), damaged ones refused in one line."""
    found = {}
    for folder in sorted((Path(out) / SHARDS).glob("*-of-*")):
        done = folder / sample_logs.SUMMARY
        if not folder.is_dir() or not done.is_file():
            continue  # a worker's log, or a shard still running
        try:
            summary = json.loads(done.read_text(encoding="utf-8"))
            state = summary["shard"]
            shard = Shard(int(state["index"]), int(state["count"]))
            if folder.name != shard.folder_name:
                raise ValueError("its shard number is not its folder's")
            if not isinstance(summary["engine"], dict) or not isinstance(summary["files"], dict) or \
                    not isinstance(state["sets"], dict):
                raise ValueError("engine, files or sets missing")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{done} is damaged ({e}); remove {folder} and rerun that shard") from None
        found[shard] = summary
    return found


def ready(out: Path | str) -> bool:
    """Are all shards of one count finished under OUT?"""
    return shards.complete(finished(out))


def _identity(summary: dict) -> dict:
    engine = summary["engine"]
    return {"engine": engine.get("engine"), "dtype": engine.get("dtype"), "model": engine.get("model")}


_SAME = (  # what every shard must share with shard 0, and what differs when it does not
    (_identity, "was answered by another model or engine"),
    (lambda s: (s.get("protocol_hash"), s.get("generation_kwargs")), "was answered under another question protocol"),
    (lambda s: s["shard"].get("split_sha256"), "was answered on another split"),  # its path may differ
    (lambda s: s["shard"]["sets"], "holds other question sets (other --sets or --limit)"),
)


def _rows(folder: Path, summary: dict) -> dict[str, list[dict]]:
    """A shard's rows per samples file, checked against its summary (listed, unchanged, of its run)."""
    out = {}
    present = {p.name for p in folder.glob("samples*.jsonl")}
    if present != set(summary["files"]):
        raise DataError(f"{folder} holds other samples files than its summary.json lists; remove {folder} and rerun "
                        "that shard")
    for name, listed in summary["files"].items():
        path = folder / name
        if not isinstance(listed, dict) or listed.get("sha256") != sha256_file(path):
            raise DataError(f"{path} was changed after its shard wrote it; remove {folder} and rerun that shard")
        rows = []
        for n, line in sample_logs.lines(path, DataError):
            try:
                row = json.loads(line)
                ok = row.pop("run_id") == summary["run_id"] and isinstance(row["doc_id"], int)
            except (ValueError, KeyError, TypeError, AttributeError):
                ok = False
            if not ok:
                raise DataError(f"{path}:{n} is not a row of this shard's run; remove {folder} and rerun that shard")
            rows.append(row)
        out[name] = rows
    return out


def merged_folder(out: Path | str) -> tuple[dict[str, list[dict]], dict]:
    """The merged samples files (name -> rows, in the unsharded order) and summary of the shards under OUT."""
    out = Path(out)
    already = " (it holds a finished run: already merged?)" if (out / sample_logs.SUMMARY).is_file() else ""
    count, summaries = in_order(finished(out), out,
                                f"run `factbench eval --sets ... --shard I/N --out {out}` for every I first",
                                rerun="run them (or rerun them)", none_note=already)
    first = summaries[0]
    for i, summary in enumerate(summaries[1:], 1):
        for key, why in _SAME:
            if key(summary) != key(first):
                raise DataError(f"shard {i}/{count} {why} than shard 0/{count}; rerun it with the same command")
    rows_of = [_rows(shard_dir(out, Shard(i, count)), s) for i, s in enumerate(summaries)]
    files, sets, question_sets = {}, {}, {}
    for task, whole in first["shard"]["sets"].items():
        name = f"samples_{task}.jsonl"
        rows = sorted((r for got in rows_of for r in got.get(name, [])), key=lambda r: r["doc_id"])
        ids = [r["doc"]["id"] for r in rows]
        if [r["doc_id"] for r in rows] != list(range(whole["questions"])) or ids_sha256(ids) != whole["sha256"]:
            raise DataError(f"the shards under {out / SHARDS} do not hold {task}'s {whole['questions']} questions "
                            "once each; remove the shards and rerun them")
        n = len(rows)
        seconds = sum((s["sets"].get(task) or {}).get("seconds") or 0 for s in summaries)
        sets[task] = {"questions": n, "em": sum(r["em"] for r in rows) / n,
                      "contains": sum(r["contains"] for r in rows) / n, "seconds": round(seconds, 2),
                      "questions_per_second": round(n / seconds, 2) if seconds else None}
        question_sets[task] = whole["sha256"]
        files[name] = rows
    extra = {k for s in rows_of for k in s} - set(files)
    if extra:
        raise DataError(f"shard files {sorted(extra)} under {out / SHARDS} are not of the shards' sets; remove the "
                        "shards and rerun them")
    summary = {k: v for k, v in first.items() if k not in ("shard", "run_id", "files")}
    summary |= {"sets": sets, "question_sets": question_sets, "merged_from": {"shards": count}}
    return files, summary


def merge(out: Path | str) -> dict:
    """Merge the finished shards under OUT into one answers folder at OUT; returns its summary."""
    out = Path(out)
    files, summary = merged_folder(out)  # every check before anything is written
    model = summary["engine"].get("model")
    sample_logs.check_out_folder(out, model, replaces=(SHARDS,))
    with output_lock(out, "--out"):
        if is_merged(out):
            return json.loads((out / sample_logs.SUMMARY).read_text(encoding="utf-8"))  # another shard merged first
        return sample_logs.write_folder(out, files, summary, replaces=(SHARDS,))


def is_merged(out: Path | str) -> bool:
    """Does OUT hold the merged answers (and no shards)?"""
    out = Path(out)
    return (out / sample_logs.SUMMARY).is_file() and not (out / SHARDS).exists()


def merge_if_ready(out: Path | str) -> bool:
    """After a shard finishes: merge when it was the last one (a busy merge elsewhere is left to it)."""
    if is_merged(out) or not ready(out):
        return False
    try:
        merge(out)
    except BusyError:
        return False
    except DataError:
        if is_merged(out):  # another shard merged (and removed the shards) meanwhile
            return False
        raise
    return True
