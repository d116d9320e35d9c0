"""A probe cut into N shards that run anywhere, merged into the very profile one process would write.

The probe's work is blocks of CHUNK questions of one relation (`knowledge.blocks`); everything a
block computes depends on its own questions only. Shard I of N takes every N-th block, in the pool's
order (so question ids decide the shard, and the shards are the same size to within one block),
runs as a normal resumable probe into `OUT/shards/I-of-N/`, and leaves its chunk files there with a
`shard.json` once done. Merging copies every shard's chunks into OUT and runs the ordinary probe over
them with an engine that is never asked anything (`ReplayEngine`): the same code labels the same
answers, so `OUT/profile.jsonl` is byte for byte the unsharded probe's, and its manifest differs
only in `wall_seconds` (the shards' sum) and `created`.

On a shared filesystem every shard gets the same --out and the last one to finish merges; otherwise
copy the `shards/` folders into one OUT and run `factbench probe --merge OUT`. `--workers N` runs N
local shard processes and merges (workers.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import BusyError, DataError, FactbenchError
from .files import make_dirs, output_lock, write_json

SHARDS = "shards"
DONE = "shard.json"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder_name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def select(self, units: list) -> list:
        """Every count-th unit, starting at index: question ids (through the blocks) decide the shard."""
        return units[self.index::self.count]

    def finish(self, shard_dir: Path, engine, protocol: dict, seconds: float) -> Path:
        """Mark a shard done (its chunks stay in .probe-work for the merge); merge if it was the last."""
        write_json(shard_dir / DONE, {"shard": [self.index, self.count], "probe_protocol": protocol,
                                      "engine": engine.describe(), "wall_seconds": round(seconds, 1)})
        return shard_dir


def parse(text: str) -> Shard:
    """`I/N` with 0 <= I < N, as `--shard` takes it."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not found or not 0 <= int(found.group(1)) < int(found.group(2)):
        raise FactbenchError(f"--shard {text!r} is not I/N with 0 <= I < N (e.g. 0/4 ... 3/4)")
    return Shard(int(found.group(1)), int(found.group(2)))


def shard_dir(out_dir: Path | str, shard: Shard) -> Path:
    return Path(out_dir) / SHARDS / shard.folder_name


def finished_shards(out_dir: Path | str) -> dict[Shard, dict]:
    """The finished shards under OUT/shards/ (their shard.json), damaged ones refused in one line."""
    found = {}
    for folder in sorted((Path(out_dir) / SHARDS).glob("*-of-*")):
        done = folder / DONE
        if not done.is_file():
            continue
        try:
            state = json.loads(done.read_text(encoding="utf-8"))
            index, count = state["shard"]
            shard = Shard(int(index), int(count))
            if folder.name != shard.folder_name or not isinstance(state["probe_protocol"], dict):
                raise ValueError("its shard number is not its folder's")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{done} is damaged ({e}); remove {folder} and rerun that shard") from None
        found[shard] = state
    return found


def ready(out_dir: Path | str) -> bool:
    """Are all shards of one count finished under OUT?"""
    return complete(finished_shards(out_dir))


def complete(done: dict) -> bool:
    """Do these finished shards (Shard -> state) make every shard of one count?"""
    counts = {s.count for s in done}
    return len(counts) == 1 and len(done) == counts.pop()


def in_order(done: dict, out_dir: Path, first_run: str, rerun: str = "run them (or rerun: each resumes)",
             none_note: str = "") -> tuple[int, list]:
    """The shard count and the finished shards' states in shard order, if every shard of one count is done.

    Refused in one line: no finished shard (`first_run` says what to run), shards of several counts,
    or a count whose shards are not all finished.
    """
    if not done:
        raise DataError(f"{out_dir / SHARDS} holds no finished shard{none_note}; {first_run}")
    counts = sorted({s.count for s in done})
    if len(counts) > 1:
        raise DataError(f"{out_dir / SHARDS} mixes shards of {' and '.join(map(str, counts))}; keep one count")
    count = counts[0]
    missing = [str(Shard(i, count)) for i in range(count) if Shard(i, count) not in done]
    if missing:
        raise DataError(f"shard(s) {', '.join(missing)} of {out_dir} are not finished; {rerun}")
    return count, [done[Shard(i, count)] for i in range(count)]


class ReplayEngine:
    """The engine a merge runs under: the shards' recorded description, and nothing to generate."""

    name = "replay"

    def __init__(self, described: dict, out_dir: Path):
        self._described, self._out = described, out_dir

    def describe(self) -> dict:
        return self._described

    def generate(self, prompts, params):
        raise DataError(f"the shards under {self._out / SHARDS} do not hold every chunk of the probe; "
                        "rerun the shards (each resumes) before merging")


def merge(out_dir: Path | str) -> Path:
    """Merge the finished shards under OUT into OUT/profile.jsonl + manifest.json (see the module doc)."""
    from . import knowledge

    out_dir = Path(out_dir)
    count, states = in_order(finished_shards(out_dir), out_dir,
                             f"run `factbench probe ... --shard I/N --out {out_dir}` for every I first")
    protocol, described = states[0]["probe_protocol"], states[0]["engine"]
    for i, state in enumerate(states[1:], 1):
        if state["probe_protocol"] != protocol:
            raise DataError(f"shard {i}/{count} was probed under another protocol than shard 0/{count} "
                            "(model, engine, pool or budget differ); rerun it with the same command")
    pool, settings = settings_of(protocol)
    with output_lock(out_dir, "--out"):
        if (out_dir / "manifest.json").exists():
            return out_dir  # another shard merged first
        work = make_dirs(out_dir / ".probe-work")
        for i in range(count):
            for chunk in (shard_dir(out_dir, Shard(i, count)) / ".probe-work").glob("*-p*-k*.json"):
                _link(chunk, work / chunk.name)
        elapsed = sum(s.get("wall_seconds") or 0 for s in states)
        write_json(work / "elapsed.json", {"seconds": elapsed})
        knowledge._probe(ReplayEngine(described, out_dir), pool, settings, out_dir)
    shutil.rmtree(out_dir / SHARDS, ignore_errors=True)
    return out_dir


def merge_if_ready(out_dir: Path | str) -> bool:
    """After a shard finishes: merge when it was the last one (a busy merge elsewhere is left to it)."""
    if not ready(out_dir):
        return False
    try:
        merge(out_dir)
    except BusyError:
        return False
    return True


def settings_of(protocol: dict):
    """The Pool and ProbeSettings a probe protocol was made from, checked by remaking the protocol."""
    from . import knowledge

    try:
        q, budget = protocol["questions"], dict(protocol["budget"])
        name = budget["name"]
        budget["trade_off"] = knowledge.BUDGETS[name].trade_off if name in knowledge.BUDGETS else ""
        pool = knowledge.Pool(**(protocol["pool"] | {"relations": tuple(protocol["pool"]["relations"])}))
        settings = knowledge.ProbeSettings(
            budget=knowledge.Budget(**budget), shots=q["shots"], exemplar_seed=q["exemplar_seed"],
            max_new_tokens=q["max_new_tokens"], sample_seed=protocol["sample_seed"],
            guess=knowledge.GuessSettings(**protocol["guess"]))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"a shard's probe protocol cannot be read back ({e}); rerun the shards") from None
    replay = ReplayEngine({"engine": protocol["engine"], "dtype": protocol["dtype"], "model": protocol["model"]}, Path())
    if settings.probe_protocol(replay, pool) != protocol:
        raise DataError("a shard's probe protocol holds settings this factbench version cannot remake; "
                        "merge with the version that probed")
    return pool, settings


def _link(src: Path, dst: Path) -> None:
    """A hard link where the filesystem allows one (no copy of the answers), else a copy."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
