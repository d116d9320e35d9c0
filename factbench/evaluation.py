"""Answer the factforget question sets with factbench's own engine, in lm-eval's per-sample shape.

`factbench eval --sets` and `factbench score` (when given a model instead of an answers folder)
both run through `answer_sets`, so an answers folder written by one reads exactly like one written
by the other, and like lm-eval's `--log_samples` output (see `factbench.samples`).

Folder layout: `samples_factforget_<set>.jsonl` per set and `summary.json` (engine, split, the
question protocol and its hash, the decoding, and per-set EM / containment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from . import __version__, asking, prompts, question_sets, sample_logs
from .engines import Engine
from .errors import FactbenchError
from .files import write_json, write_jsonl
from .protocol import generation_kwargs, generation_params, protocol_hash, question_protocol
from .splits import Split


def ids_sha256(ids) -> str:
    """The identity of a question set: sha256 of its sorted fact ids, one per line."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


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
                echo: Callable[[str], None] = print) -> dict:
    """Answer every set greedily under the question protocol; write samples and summary into `out`.

    Returns the summary (what `summary.json` holds). Empty sets are skipped, as lm-eval would have
    nothing to log for them.
    """
    params_kwargs = generation_kwargs()
    params = generation_params()
    protocol = question_protocol()
    summary = {"engine": engine.describe(), "split": str(split.path) if split else None, "sets": {},
               "factbench_version": __version__, "protocol": protocol, "protocol_hash": protocol_hash(protocol),
               "generation_kwargs": params_kwargs, "question_sets": {}}
    for name, docs in sets.items():
        task = question_sets.task_name(name)
        if not docs:
            echo(f"{task}: no questions, skipped")
            continue
        facts = [question_sets.fact_of(d) for d in docs]
        run = asking.answer(engine, facts, params=params)
        rows = [sample_logs.record(i, d, prompts.build_prompt(f, 0), r["completion"], r["em"], r["contains"],
                               params_kwargs) for i, (d, f, r) in enumerate(zip(docs, facts, run.records))]
        summary["sets"][task] = run.summary()
        summary["question_sets"][task] = ids_sha256(d["id"] for d in docs)
        echo(f"{task:<24} {len(rows):>5} questions  EM {summary['sets'][task]['em']:.3f}  "
             f"contains {summary['sets'][task]['contains']:.3f}")
        if out:
            write_jsonl(out / f"samples_{task}.jsonl", rows)
    if out:
        write_json(out / "summary.json", summary)
        echo(f"wrote samples_<task>.jsonl per set and summary.json into {out}")
    return summary
