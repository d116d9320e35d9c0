"""Knowledge profiles: what a base model knows, question by question (SliCK, Gekhman et al. 2024),
and whether a right answer is recalled or could be guessed.

For every question in a pool the probe asks the base model under `budget.prompts` different
4-shot prompts (exemplars from the dev split of the same relation), once greedily and
`budget.samples` times sampled (temperature 0.5, top-k 40 by default), and labels it:

| category    | rule                                                     |
|-------------|----------------------------------------------------------|
| HighlyKnown | greedy answer right under every prompt                   |
| MaybeKnown  | greedy answer right under some prompts, not all          |
| WeaklyKnown | greedy never right, some sample right                    |
| Unknown     | never right, greedy or sampled                           |

Samples can only move a question between WeaklyKnown and Unknown, so with `lazy_sampling`
(default) they are drawn only for questions whose greedy answers were never right: the same
categories for a fraction of the cost. `p_sampled` is then recorded only for those questions.

**Guess evidence.** A right answer is not always a recalled fact (small models copy the answer
out of the question, repeat an exemplar's answer, or give one answer to a whole relation). For each
question the profile records:

- `answer_in_question`: a gold answer appears, as whole words, in the question itself;
- `exemplar_copies`: prompts under which the right greedy answer equals an exemplar answer shown in
  that prompt (`recalled_prompts` = right greedy answers that were not such copies);
- `guess_rate`: the subject-blind control. The same prompts with the subject replaced by
  `guess_controls` other subjects of the same relation (chosen deterministically among pool
  questions whose gold answers differ): the share of those control answers that equal this
  question's gold answer. The control questions are themselves pool questions, so their greedy
  answers are already computed under the same prompts: the control costs no extra generation.

`guessable` = answer in question, or guess_rate >= `guess_threshold`, or every right greedy
answer was an exemplar copy. `known` (the label splits use) = HighlyKnown and not guessable.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import random
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from . import __version__, data, matching, prompts
from .data import Fact
from .errors import DataError, FactbenchError, WriteError
from .files import output_lock, write_bytes, write_json
from .protocol import MAX_NEW_TOKENS, explain_mismatch, generation_params, protocol_hash, question_protocol

if TYPE_CHECKING:  # the engines' interface, for type hints only: profiles and splits run no model
    from .engines.base import Engine, GenerationParams

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
PROFILE_SCHEMA = 1
CHUNK = 128  # questions per resumable unit of work
BUNDLED_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class Budget:
    """How hard to look for a right answer. Gekhman's is the default; cheaper ones say what they trade."""

    name: str
    prompts: int
    samples: int  # per prompt, besides the one greedy answer
    temperature: float = 0.5
    top_k: int = 40
    lazy_sampling: bool = True
    trade_off: str = ""


BUDGETS = {
    "gekhman": Budget("gekhman", 10, 16, trade_off="none: Gekhman et al. (2024), 10 prompts x (1 greedy + 16 samples)"),
    "lite": Budget("lite", 4, 4, trade_off=(
        "4 prompts x (1 greedy + 4 samples), about 1/8 of gekhman's generations: HighlyKnown needs 4 right "
        "prompts instead of 10 (a few more facts pass), and with 16 samples instead of 160 some WeaklyKnown "
        "facts are labelled Unknown")),
    "smoke": Budget("smoke", 2, 2, trade_off="2 prompts x (1 greedy + 2 samples): for tests and trials only"),
}
DEFAULT_BUDGET = "gekhman"


@dataclass(frozen=True)
class Pool:
    """Which questions to probe: `per_relation` questions of each relation from one split."""

    relations: tuple[str, ...] = data.IN_DISTRIBUTION + data.OUT_OF_DISTRIBUTION
    per_relation: int = 500
    split: str = "train"
    seed: int = 0

    def facts(self) -> list[Fact]:
        data.check_split(self.split)
        out = []
        for r in data.check_relations(self.relations):
            rows = data.load(self.split, [r])
            # A question string shared by several subjects has more than one true answer set.
            counts = Counter(f.question for f in rows)
            unique = [f for f in rows if counts[f.question] == 1]
            chosen = random.Random(f"{self.seed}/{r}").sample(unique, min(self.per_relation, len(unique)))
            out.extend(sorted(chosen, key=lambda f: f.index))
        if not out:
            raise FactbenchError("the pool is empty")
        return out


@dataclass(frozen=True)
class GuessSettings:
    controls: int = 8  # other subjects per question
    threshold: float = 0.2  # guess_rate at or above this makes a question guessable
    seed: int = 0


@dataclass
class ProbeSettings:
    budget: Budget = field(default_factory=lambda: BUDGETS[DEFAULT_BUDGET])
    shots: int = prompts.DEFAULT_SHOTS
    exemplar_seed: int = prompts.DEFAULT_EXEMPLAR_SEED
    max_new_tokens: int = MAX_NEW_TOKENS
    sample_seed: int = 0
    guess: GuessSettings = field(default_factory=GuessSettings)

    def __post_init__(self):
        if self.guess.controls < 1 or not 0 < self.guess.threshold <= 1:
            raise FactbenchError("guess controls must be >= 1 and the guess threshold in (0, 1]")
        if self.budget.prompts < 1 or self.budget.samples < 0:
            raise FactbenchError("a budget needs at least 1 prompt and 0 or more samples")

    def question_protocol(self) -> dict:
        """How questions are asked and graded: what a tuned model's answers must share with the profile."""
        return question_protocol(shots=self.shots, exemplar_seed=self.exemplar_seed,
                                 max_new_tokens=self.max_new_tokens)

    def probe_protocol(self, engine: Engine, pool: Pool) -> dict:
        """Everything that determines a profile's contents; a resumed probe must match it exactly."""
        described = engine.describe()
        return {
            "questions": self.question_protocol(),
            "budget": asdict(self.budget) | {"trade_off": None},
            "sample_seed": self.sample_seed,
            "guess": asdict(self.guess),
            "pool": asdict(pool) | {"relations": list(pool.relations)},
            "engine": described["engine"],
            "dtype": described.get("dtype"),
            "model": described["model"],
        }


# ---- the probe ----------------------------------------------------------------------------------

def probe(engine: Engine, pool: Pool, settings: ProbeSettings, out_dir: Path | str, shard=None) -> Path:
    """Probe every pool question and write `profile.jsonl` + `manifest.json` into out_dir.

    Resumable: work is cut into chunks of (relation, prompt, part) saved under
    out_dir/.probe-work/ as they finish; a rerun with the same protocol skips finished chunks, and
    recomputes (saying so on stderr) a chunk whose file is damaged. The profile and manifest are
    written atomically at the end, the manifest last; the chunks go only once both are in place, so
    a write that fails (full disk) loses no finished work. out_dir is locked for the run: a second
    probe into it is refused at once (BusyError).
    """
    out_dir = Path(out_dir)
    with output_lock(out_dir, "--out"):
        return _probe(engine, pool, settings, out_dir, shard)


def _check_out(out_dir: Path) -> None:
    """Refuse a finished profile or a damaged work folder, and check that out_dir takes a write."""
    if (out_dir / "manifest.json").exists():
        raise FactbenchError(f"{out_dir} already holds a finished profile; choose another --out")
    work = out_dir / ".probe-work"
    if work.exists() and not work.is_dir():
        raise DataError(f"{work} is not a folder (a damaged partial probe); remove it and rerun")
    _saved_protocol(work)
    check = out_dir / ".write-check"
    try:
        write_bytes(check, b"factbench\n")
    except WriteError as e:
        raise WriteError(str(e).replace(str(check), str(out_dir))) from None
    check.unlink(missing_ok=True)


def blocks(facts: list[Fact]) -> list[tuple[str, int, list[Fact]]]:
    """The probe's units of work, (relation, offset, facts): CHUNK pool questions of one relation.

    A block is asked under every prompt (greedy), then its questions no greedy answer got right are
    sampled. Everything about a block depends on its own questions only, so blocks can be computed in
    any order, in any process (shards.py), and give the same chunk files.
    """
    by_relation = defaultdict(list)
    for f in facts:
        by_relation[f.relation].append(f)
    return [(r, k, fs[k:k + CHUNK]) for r, fs in by_relation.items() for k in range(0, len(fs), CHUNK)]


def _probe(engine: Engine, pool: Pool, settings: ProbeSettings, out_dir: Path, shard=None) -> Path:
    """`probe` once out_dir is locked. With a `shards.Shard`, only that shard's blocks, and no profile."""
    facts = pool.facts()
    protocol = settings.probe_protocol(engine, pool)
    _check_out(out_dir)
    work = _work_dir(out_dir, protocol)
    start = time.perf_counter() - _elapsed(work)
    budget = settings.budget
    units = blocks(facts)
    if shard is not None:
        units = shard.select(units)
    asked = sum(len(fs) for _, _, fs in units)
    # The total is re-estimated as lazy sampling learns which questions need samples.
    bar = tqdm(total=asked * budget.prompts * (1 + budget.samples), unit="answer",
               desc="probing" if shard is None else f"probing shard {shard}", dynamic_ncols=True, smoothing=0.05)
    params = generation_params(settings.question_protocol(), temperature=budget.temperature, top_k=budget.top_k,
                               n=budget.samples, seed=settings.sample_seed) if budget.samples else None
    greedy: dict[tuple[str, int], str] = {}  # (fact id, prompt) -> answer
    sampled: dict[str, int] = defaultdict(int)
    for r, k, block in units:
        for p in range(budget.prompts):
            result = _run_chunk(work, f"greedy-{r}-p{p}-k{k}", engine, block, p, settings, None, start)
            greedy.update({(fid, p): a[0] for fid, a in result.items()})
            bar.update(len(block))
        if not budget.samples:
            continue
        todo = [f for f in block if not (budget.lazy_sampling and any(
            matching.exact_match(greedy[(f.id, p)], f.answers) for p in range(budget.prompts)))]
        bar.total -= (len(block) - len(todo)) * budget.prompts * budget.samples
        bar.refresh()
        for p in range(budget.prompts):
            if todo:
                result = _run_chunk(work, f"sampled-{r}-p{p}-k{k}", engine, todo, p, settings, params, start)
                for f in todo:
                    sampled[f.id] += sum(matching.exact_match(a, f.answers) for a in result[f.id])
            bar.update(len(todo) * budget.samples)
    bar.close()
    if shard is not None:
        return shard.finish(out_dir, engine, protocol, time.perf_counter() - start)

    rows = label(facts, greedy, sampled, settings)
    manifest = _manifest(rows, protocol, pool, settings, engine, time.perf_counter() - start)
    blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    manifest["profile_sha256"] = hashlib.sha256(blob).hexdigest()
    # The manifest last: a profile is finished when it has one. The work folder goes only after it,
    # so a failed write (full disk) leaves every chunk for the rerun, and no half profile.
    write_bytes(out_dir / "profile.jsonl", blob)
    try:
        write_json(out_dir / "manifest.json", manifest)
    except BaseException:
        (out_dir / "profile.jsonl").unlink(missing_ok=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


def _saved_protocol(work: Path) -> dict | None:
    """The protocol a partial probe was started under (None: no partial probe); damaged: refused."""
    state = work / "protocol.json"
    if not state.exists():
        return None
    try:
        previous = json.loads(state.read_text(encoding="utf-8"))
        if not isinstance(previous, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise DataError(f"{state} is damaged ({_first_line(e)}): the partial probe's chunks cannot be "
                        f"trusted without it; remove {work} and rerun") from None
    return previous


def _work_dir(out_dir: Path, protocol: dict) -> Path:
    work = out_dir / ".probe-work"
    state = work / "protocol.json"
    previous = _saved_protocol(work)
    if previous is not None:
        if previous != protocol:
            raise FactbenchError(f"{out_dir} holds a partial probe under another protocol "
                                 f"({explain_mismatch(previous, protocol, ('partial', 'this run'))}); "
                                 "choose another --out or delete it")
    else:
        write_json(state, protocol)
    return work


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _elapsed(work: Path) -> float:
    try:
        seconds = json.loads((work / "elapsed.json").read_text(encoding="utf-8"))["seconds"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return 0.0  # lost or damaged: only the reported wall time suffers
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else 0.0


def _saved_chunk(path: Path, ids: list[str], n: int) -> list[list[str]] | None:
    """A finished chunk's answers, or None (with a line on stderr) when the file is damaged."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or saved.get("ids") != ids:
            raise ValueError("other question ids than this chunk's")
        answers = saved.get("answers")
        if not (isinstance(answers, list) and len(answers) == len(ids)
                and all(isinstance(a, list) and len(a) == n and all(isinstance(x, str) for x in a)
                        for a in answers)):
            raise ValueError(f"not {len(ids)} rows of {n} answers")
    except (OSError, ValueError) as e:
        tqdm.write(f"factbench: chunk {path.name} damaged ({_first_line(e)}): recomputing", file=sys.stderr)
        return None
    return answers


def _run_chunk(work: Path, name: str, engine: Engine, chunk: list[Fact], prompt_index: int,
               settings: ProbeSettings, params: GenerationParams | None, start: float) -> dict[str, list[str]]:
    path = work / f"{name}.json"
    ids = [f.id for f in chunk]
    params = params or generation_params(settings.question_protocol())
    saved = _saved_chunk(path, ids, params.n)
    if saved is not None:
        return dict(zip(ids, saved))
    texts = [prompts.build_prompt(f, prompt_index, settings.exemplar_seed, settings.shots) for f in chunk]
    completions = engine.generate(texts, params)
    write_json(path, {"ids": ids, "answers": completions})
    write_json(work / "elapsed.json", {"seconds": time.perf_counter() - start})
    return dict(zip(ids, completions))


# ---- labels -------------------------------------------------------------------------------------

def category(greedy_correct: list[bool], sampled_correct: int) -> str:
    if all(greedy_correct):
        return "HighlyKnown"
    if any(greedy_correct):
        return "MaybeKnown"
    return "WeaklyKnown" if sampled_correct else "Unknown"


def label(facts: list[Fact], greedy: dict[tuple[str, int], str], sampled: dict[str, int],
          settings: ProbeSettings) -> list[dict]:
    """One profile row per fact: answers, SliCK category, guess evidence, `known`."""
    budget, guess = settings.budget, settings.guess
    controls = choose_controls(facts, guess)
    rows = []
    for f in facts:
        greedy_answers = [greedy[(f.id, p)] for p in range(budget.prompts)]
        correct = [matching.exact_match(a, f.answers) for a in greedy_answers]
        copies = sum(c and matching.exact_match(a, exemplar_answers(f, p, settings))
                     for p, (a, c) in enumerate(zip(greedy_answers, correct)))
        control_hits = sum(matching.exact_match(greedy[(c, p)], f.answers)
                           for c in controls[f.id] for p in range(budget.prompts))
        guess_rate = control_hits / (len(controls[f.id]) * budget.prompts) if controls[f.id] else None
        in_question = matching.contains(f.question, f.answers)
        sampled_lazily = budget.lazy_sampling and any(correct)
        cat = category(correct, sampled.get(f.id, 0))
        guessable = bool(in_question or (guess_rate is not None and guess_rate >= guess.threshold)
                         or (any(correct) and copies == sum(correct)))
        rows.append({
            "id": f.id,
            "relation": f.relation,
            "category": cat,
            "known": cat == "HighlyKnown" and not guessable,
            "guessable": guessable,
            "p_greedy": sum(correct) / len(correct),
            "p_sampled": None if sampled_lazily or not budget.samples
            else sampled.get(f.id, 0) / (budget.samples * budget.prompts),
            "greedy_answers": greedy_answers,
            "answer_in_question": in_question,
            "exemplar_copies": copies,
            "recalled_prompts": sum(correct) - copies,
            "guess_rate": guess_rate,
        })
    return rows


def exemplar_answers(fact: Fact, prompt_index: int, settings: ProbeSettings) -> list[str]:
    return [e.answers[0] for e in prompts.exemplars(fact, prompt_index, settings.exemplar_seed, settings.shots)]


def choose_controls(facts: list[Fact], guess: GuessSettings) -> dict[str, list[str]]:
    """For each fact, up to `guess.controls` other pool facts of its relation with different gold answers."""
    by_relation = defaultdict(list)
    for f in facts:
        by_relation[f.relation].append(f)
    out = {}
    for f in facts:
        gold = {matching.normalize_answer(a) for a in f.answers}
        others = [o for o in by_relation[f.relation]
                  if o.id != f.id and not gold & {matching.normalize_answer(a) for a in o.answers}]
        rng = random.Random(f"{guess.seed}/{f.id}")
        out[f.id] = [o.id for o in rng.sample(others, min(guess.controls, len(others)))]
    return out


# ---- manifest and loading -----------------------------------------------------------------------

def counts_by_relation(rows: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        c = table[row["relation"]]
        c[row["category"]] += 1
        c["guessable_greedy_right"] += row["guessable"] and row["p_greedy"] > 0
        c["known"] += row["known"]
        c["total"] += 1
    return {r: {k: c[k] for k in (*CATEGORIES, "known", "guessable_greedy_right", "total")}
            for r, c in sorted(table.items(), key=lambda kv: int(kv[0][1:]))}


def _manifest(rows, protocol, pool, settings, engine, seconds) -> dict:
    ids = "\n".join(r["id"] for r in rows)
    return {
        "schema": PROFILE_SCHEMA,
        "kind": "factbench knowledge profile",
        "factbench_version": __version__,
        "model": protocol["model"],
        # The question protocol (prompts, decoding, matching) and its hash are what scoring and the
        # lm-eval tasks check; the probe protocol adds budget, pool, guess settings and engine.
        "protocol": protocol["questions"],
        "protocol_hash": protocol_hash(protocol["questions"]),
        "probe_protocol": protocol,
        # Changes with anything that changes the labels (budget, pool, guess settings, engine, model).
        "probe_protocol_hash": protocol_hash(protocol),
        "pool": asdict(pool) | {"relations": list(pool.relations), "questions": len(rows),
                                "ids_sha256": hashlib.sha256(ids.encode()).hexdigest()},
        "budget": asdict(settings.budget),
        "engine": engine.describe(),
        "counts": counts_by_relation(rows),
        "wall_seconds": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class Profile:
    path: Path
    manifest: dict
    rows: list[dict]

    @property
    def protocol_hash(self) -> str:
        return self.manifest["protocol_hash"]

    def facts(self) -> dict[str, Fact]:
        return {f.id: f for f in data.get(r["id"] for r in self.rows)}


def bundled_profile_dir(name: str = "smollm2-135m") -> Path:
    return BUNDLED_DIR / name


PROFILE_KEYS = ("kind", "schema", "model", "protocol", "protocol_hash", "profile_sha256", "counts")
ROW_KEYS = ("id", "relation", "category", "known")


def load_profile(path: Path | str) -> Profile:
    """Read and verify a profile folder; every problem is one DataError line."""
    path = Path(path)
    if path.name in ("manifest.json", "profile.jsonl", "profile.jsonl.xz"):
        path = path.parent
    manifest_path = path / "manifest.json"
    if not path.is_dir():
        raise DataError(f"profile {path} does not exist")
    if not manifest_path.is_file():
        raise DataError(f"{path} is not a finished profile (no manifest.json; a partial probe resumes when rerun)")
    redo = "probe the model again (factbench probe) into a new --out"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        raise DataError(f"{manifest_path} is unreadable or not a factbench profile manifest "
                        f"(not UTF-8 JSON); {redo}") from None
    missing = [k for k in PROFILE_KEYS if k not in manifest] if isinstance(manifest, dict) else None
    if missing is None or "kind" in missing or "schema" in missing:
        raise DataError(f"{manifest_path} is unreadable or not a factbench profile manifest "
                        f"(no kind and schema); {redo}")
    kind, schema = manifest["kind"], manifest["schema"]
    if kind != "factbench knowledge profile" or schema != PROFILE_SCHEMA:
        raise DataError(f"{manifest_path} is a {kind!r} schema {schema}, expected a profile of schema {PROFILE_SCHEMA}")
    if missing:
        raise DataError(f"{manifest_path} is damaged (no {', '.join(missing)}); {redo}")
    rows_path = next((p for p in (path / "profile.jsonl", path / "profile.jsonl.xz") if p.is_file()), None)
    if rows_path is None:
        raise DataError(f"{path} has a manifest but no profile.jsonl")
    try:
        raw = rows_path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {rows_path} ({e.strerror or e})") from None
    if rows_path.suffix == ".xz":
        try:
            raw = lzma.decompress(raw)
        except lzma.LZMAError:
            raise DataError(f"{rows_path} is corrupted (not valid xz)") from None
    if hashlib.sha256(raw).hexdigest() != manifest.get("profile_sha256"):
        raise DataError(f"{rows_path} does not match the checksum in its manifest (edited or corrupted)")
    try:
        rows = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        bad = next((i for i, r in enumerate(rows, 1) if not isinstance(r, dict) or any(k not in r for k in ROW_KEYS)),
                   None)
        if bad is not None:
            raise ValueError(f"line {bad} is not a profile row")
    except ValueError as e:
        raise DataError(f"{rows_path} is not a valid profile ({_first_line(e)}); {redo}") from None
    return Profile(path, manifest, rows)


def probe_model(model: str, out_dir: Path | str, *, relations: tuple[str, ...] | None = None, per_relation: int = 500,
                pool_split: str = "train", pool_seed: int = 0, budget: str = DEFAULT_BUDGET,
                exemplar_seed: int = prompts.DEFAULT_EXEMPLAR_SEED, guess_controls: int = 8,
                guess_threshold: float = 0.2, engine: str = "hf", revision: str | None = None, dtype: str = "auto",
                batch_size: int | None = None, shard=None) -> Profile | None:
    """`factbench probe`: profile a model spec on a pool of questions under a named budget (resumable).

    Validates the budget, the pool and the guess settings before a model is loaded; returns the
    finished profile read back from `out_dir`. With `shard` (a `shards.Shard`), probes that shard
    into out_dir/shards/I-of-N/ and merges when it was the last to finish: returns the profile
    then, None while other shards are still to run.
    """
    from .engines import make_engine

    if budget not in BUDGETS:
        raise FactbenchError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    pool = Pool(relations=tuple(relations) if relations else Pool.relations, per_relation=per_relation,
                split=pool_split, seed=pool_seed)
    if per_relation < 1:
        raise FactbenchError("--per-relation must be at least 1")
    settings = ProbeSettings(budget=BUDGETS[budget], exemplar_seed=exemplar_seed,
                             guess=GuessSettings(guess_controls, guess_threshold))
    pool.facts()  # validate relations and split before loading a model
    from . import models

    where = models.resolve(model, revision)  # a bad spec, or a hub id out of reach, before any folder is made
    if where["source"] == "hub":
        models.check_hub(where["name"], where["revision"])
    out_dir = Path(out_dir)
    top = out_dir
    if shard is not None:
        from . import shards

        if (out_dir / "manifest.json").exists():
            raise FactbenchError(f"{out_dir} already holds a finished profile; choose another --out")
        out_dir = shards.shard_dir(out_dir, shard)
    created = not out_dir.exists()
    # Locked, and checked writable, before the model is loaded: a second probe into the same folder
    # or a full disk is refused at once, not after the expensive part.
    try:
        with output_lock(out_dir, "--out"):
            _check_out(out_dir)
            runner = make_engine(engine, model, revision=revision, dtype=dtype, batch_size=batch_size,
                                 progress=False)
            _probe(runner, pool, settings, out_dir, shard)
    except BaseException:
        if created:
            _remove_if_empty(out_dir)
        raise
    if shard is not None:
        from . import shards

        return load_profile(top) if shards.merge_if_ready(top) else None
    return load_profile(out_dir)


def _remove_if_empty(folder: Path) -> None:
    """Remove a folder this run created and left holding nothing but its lock (no work to resume)."""
    try:
        if folder.is_dir() and all(p.name == ".lock" for p in folder.iterdir()):
            (folder / ".lock").unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass
