"""One side's audit answers: from an lm-eval `--log_samples` folder, a factbench answers folder, or a model.

Both sources write the same per-sample rows (`factbench.sample_logs`), one per (question, prompt
index), in `samples_factforget_audit[_<date>].jsonl`; factbench's folder adds `summary.json`,
lm-eval's its `results_<date>.json`. A model given instead of a folder is asked by factbench's
engine and its answers are read back through the same reader, so a card made from lm-eval logs
and one made by factbench's engines are the same card.

Refused, with one line naming the cause: a folder of split-set answers (`factbench score`'s), a
run of another audit version or preset, questions or prompts missing, a prompt that is not the one
this factbench builds, grades or decoding that are not this factbench's.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, data, matching, prompts, sample_logs
from ..consistency import check_decoding, check_grade
from ..errors import FactbenchError
from ..protocol import generation_kwargs, generation_params, protocol_hash, question_protocol
from . import questions, trained_on
from .questions import AuditError

TASK = "factforget_audit"


@dataclass
class AuditAnswers:
    """One side's answers, keyed by (fact id, prompt index)."""

    role: str
    identity: dict
    preset: str
    answers: dict[tuple[str, int], dict]
    decoding: dict | None = None
    notes: list[str] = field(default_factory=list)

    def prompts(self) -> int:
        return 1 + max(p for _, p in self.answers)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for (fid, p) in sorted(self.answers):
            digest.update(f"{fid}\t{p}\t{self.answers[(fid, p)]['completion']}\n".encode())
        return digest.hexdigest()


# ---- asking a model ------------------------------------------------------------------------------

def ask(engine, preset: str, prompts_asked: int, out: Path, echo=print, training=None) -> dict:
    """Ask every audit question under prompts 0..prompts_asked-1 (0: none) and every training question
    under prompt 0; write samples and summary into `out` (one model's one run, written whole)."""
    sample_logs.check_out_folder(out, engine.describe().get("model"), flag="--save-answers")
    docs = questions.docs(preset, prompts_asked) if prompts_asked else []
    if training is not None:
        docs += trained_on.docs(training, f"{questions.AUDIT_VERSION}/{preset}")
    texts = [prompt_of(d) for d in docs]
    asked = f"{len(questions.facts(preset))} questions x {prompts_asked} prompts" if prompts_asked else "no audit questions"
    extra = f" + {len(training.facts)} training questions" if training is not None else ""
    echo(f"asking {len(docs)} prompts ({asked}{extra}) ...")
    started = time.perf_counter()
    completions = engine.generate(texts, generation_params())
    seconds = time.perf_counter() - started
    kwargs = generation_kwargs()
    rows = []
    for i, (d, text, c) in enumerate(zip(docs, texts, completions, strict=True)):
        gold = d["answers"]
        rows.append(sample_logs.record(i, d, text, c[0], matching.exact_match(c[0], gold),
                                       matching.contains(c[0], gold), kwargs))
    protocol = question_protocol()
    summary = {"kind": "factbench audit answers", "engine": engine.describe(), "audit": questions.identity(preset),
               "prompts_asked": prompts_asked, "factbench_version": __version__, "protocol": protocol,
               "protocol_hash": protocol_hash(protocol), "generation_kwargs": kwargs, "seconds": round(seconds, 1),
               "answers_per_second": round(len(rows) / seconds, 2) if seconds else None,
               "training_data": training.identity() if training is not None else None}
    return sample_logs.write_folder(out, {f"samples_{TASK}.jsonl": rows}, summary)  # whole, or not at all


def prompt_of(doc: dict) -> str:
    """The prompt of an audit or training-question document (what both sources must have asked)."""
    if trained_on.is_trained_id(doc["id"]):
        return trained_on.prompt(doc["question"])
    return prompts.build_prompt(data.get([doc["id"]])[0], int(doc["prompt_index"]))


def answer_with_model(spec: str, role: str, preset: str, prompts_asked: int, *, training=None, engine: str = "hf",
                      revision: str | None = None, dtype: str = "auto", batch_size: int | None = None,
                      save_to: Path | None = None, echo=print) -> AuditAnswers:
    """Ask a model (see `ask`) and read its answers back through `read`, kept in `save_to` if given."""
    from ..engines import make_engine

    runner = make_engine(engine, spec, revision=revision, dtype=dtype, batch_size=batch_size)
    if save_to is not None:
        ask(runner, preset, prompts_asked, save_to, echo, training)
        return read(save_to, role, preset, training)
    with tempfile.TemporaryDirectory(prefix="factbench-audit-") as tmp:
        ask(runner, preset, prompts_asked, Path(tmp), echo, training)
        got = read(tmp, role, preset, training)
    got.identity["answers"] = None  # the answers were not kept
    return got


# ---- reading a folder ----------------------------------------------------------------------------

def find_run(folder: Path, role: str) -> Path:
    """The one samples file of the audit task under `folder`, refusing split answers and mixed runs."""
    found = sorted(folder.rglob(f"samples_{TASK}*.jsonl"))
    if not found:
        split_logs = sorted(p.name for p in folder.rglob("samples_factforget_*.jsonl"))
        if split_logs:
            raise AuditError(f"{role} folder {folder} holds factforget split-set answers ({split_logs[0]}, ...), not "
                             f"audit answers: score those with `factbench score`, or rerun with --tasks {TASK}")
        raise AuditError(f"{role} folder {folder} holds no audit answers (samples_{TASK}*.jsonl from lm_eval "
                         f"--tasks {TASK} --log_samples, or factbench audit --save-answers)")
    runs = {p.parent for p in found}
    if len(runs) > 1:
        names = ", ".join(sorted(str(p.relative_to(folder)) or "." for p in runs))
        raise AuditError(f"{role} folder {folder} holds audit answers of several runs ({names}); pass one model's folder")
    return sample_logs.find(runs.pop(), TASK)


def read(folder: Path | str, role: str, preset: str | None = None, training=None) -> AuditAnswers:
    """Read and check one side's audit answers (see the module docstring for what is refused)."""
    folder = Path(folder)
    path = find_run(folder, role)
    own = path.name == f"samples_{TASK}.jsonl"
    if own:  # one run's folder: its summary must describe this file (checked before the rows are read)
        identity, notes = _identity(path, role)
    tags, decodings, rows, trained_files, runs = set(), set(), 0, set(), set()
    for n, line in sample_logs.lines(path, AuditError):
        rows += 1
        try:
            row = json.loads(line)
            tags.add(row["doc"]["audit"])
            if trained_on.is_trained_id(row["doc"]["id"]):
                trained_files.add(row["doc"]["trained_on"])
            decodings.add(json.dumps(row["arguments"]["gen_args_0"]["arg_1"], sort_keys=True, default=str))
            runs.add(row.get("run_id"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuditError(f"{path}:{n} is not an audit sample (needs doc.audit and the logged "
                             "generation arguments; truncated or corrupted?)") from None
    if own and identity.get("run_id") and runs != {identity["run_id"]}:
        from ..answer_sources import mixed_runs

        raise AuditError(mixed_runs(role, path, "its rows are not all of the run its summary.json describes"))
    try:
        by_key = sample_logs.read(path, key=lambda doc: (doc["id"], int(doc["prompt_index"])))
    except FactbenchError as e:
        raise AuditError(str(e)) from None
    if rows != len(by_key):
        raise AuditError(f"{path} has {rows} rows for {len(by_key)} (question, prompt) pairs (two runs appended?)")
    if len(tags) != 1:
        raise AuditError(f"{path} mixes answers of several audit sets ({', '.join(sorted(tags))})")
    version, _, made_preset = tags.pop().partition("/")
    if version != questions.AUDIT_VERSION:
        raise AuditError(f"{role} answers in {path.parent} were made under audit version {version}, but this "
                         f"factbench audits under {questions.AUDIT_VERSION}: ask the model again")
    if preset is not None and made_preset != preset:
        raise AuditError(f"{role} answers in {path.parent} are of the {made_preset!r} audit preset, not {preset!r}: "
                         "both sides must answer the same preset (--preset)")
    if len(decodings) != 1:
        raise AuditError(f"{path} mixes {len(decodings)} different decodings")
    decoding = json.loads(decodings.pop())
    check_decoding(decoding, f"{role} answers {path.name}")
    if not own:
        identity, notes = _identity(path, role)
    if trained_files and (training is None or trained_files != {training.sha256}):
        if training is not None:
            raise AuditError(f"the {role} answers in {path.parent} answer the questions of another training file than "
                             f"--trained-on {training.path} (sha256 {sorted(trained_files)[0][:12]} vs "
                             f"{training.sha256[:12]})")
        notes.append(f"{role}: the answers also hold training questions; without --trained-on they are not used")
        by_key = {k: v for k, v in by_key.items() if not trained_on.is_trained_id(k[0])}
    _check_rows(by_key, made_preset, role, path, training)
    return AuditAnswers(role, identity, made_preset, by_key, decoding, notes)


def _check_rows(by_key: dict, preset: str, role: str, path: Path, training) -> None:
    facts = {f.id: f for f in questions.facts(preset)}
    trained = {f.id: f for f in training.facts} if training is not None else {}
    foreign = sorted(fid for fid, _ in by_key if fid not in facts and fid not in trained)
    if foreign:
        raise AuditError(f"{len(foreign)} {role} answers in {path.parent} are to questions outside the {preset} audit "
                         f"set (e.g. {foreign[0]}): edited, or made by another factbench")
    for (fid, p), got in by_key.items():
        gold = trained[fid].answers if fid in trained else facts[fid].answers
        doc = {"id": fid, "prompt_index": p, "question": trained[fid].question if fid in trained else None}
        if got["prompt_hash"] != hashlib.sha256(prompt_of(doc).encode()).hexdigest():
            raise AuditError(f"the {role} answers' prompt {p} for {fid} is not the prompt this factbench asks "
                             "(another prompt version, exemplar seed or number of shots)")
        check_grade(role, fid, got, gold, AuditError)


def check_complete(side: AuditAnswers, prompts_needed: int) -> None:
    """Every audit question answered under prompts 0..prompts_needed-1."""
    ids = [f.id for f in questions.facts(side.preset)] if prompts_needed else []
    missing = [(fid, p) for fid in ids for p in range(prompts_needed) if (fid, p) not in side.answers]
    if missing:
        where = side.identity.get("answers") or "the answers"
        raise AuditError(f"the {side.role} answers ({where}) lack {len(missing)} of the {len(ids) * prompts_needed} "
                         f"(question, prompt) pairs the {side.preset} audit needs from the {side.role} "
                         f"(e.g. {missing[0][0]} under prompt {missing[0][1]}): an interrupted or --limit run? "
                         f"answer every question" + (f" under {prompts_needed} prompts" if prompts_needed > 1 else ""))


def _identity(path: Path, role: str) -> tuple[dict, list[str]]:
    from ..answer_sources import factbench_identity, lmeval_identity

    try:
        if path.name == f"samples_{TASK}.jsonl":
            return factbench_identity(path.parent, role)
        return lmeval_identity(path.parent, {"audit": path}, role, task_of=lambda _: TASK)
    except FactbenchError as e:
        raise AuditError(str(e)) from None

