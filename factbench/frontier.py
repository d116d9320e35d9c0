"""The retention–acquisition frontier of a study: several recipes (variants) × seeds, compared at matched acquisition.

A recipe that learns fewer new facts also forgets fewer old ones for that reason alone (METHOD.md §3),
so recipes are compared along their training trajectories, not at their last epoch. Every training
run writes, at each evaluation point and protocol, the per-question outcomes of the held-out Known
set and of the new (Unknown, trained-on) set (recipes/callbacks.py: `eval_questions.json` and
`eval_outcomes.jsonl`). From them, per protocol ("4-shot", "0-shot"; never mixed):

- the points: every evaluation of a run, in training order; under "0-shot" the untrained base
  model's point (marked `base` in eval_outcomes.jsonl) is left out, since a base model is asked
  4-shot (it has not learnt the `Q:`/`A:` format; the paper asks only fine-tunes 0-shot);
- *retention* at a point: the share of held-out recalled questions (guessable '0'; all of them when
  guessability is unknown) answered right; *acquisition*: the share of new questions answered right;
- the *curve* of a variant: at each point index, the mean over its seeds of (acquisition, retention);
- *retention at matched acquisition* a: per run, linear interpolation between the two consecutive
  points where its acquisition first reaches a; per variant, the mean over seeds ("not reached" when
  a seed never reaches a; a run already past a at its first point gives that point, and is named);
- its *difference* from a reference variant (default "sft") and the *share of forgetting removed*
  relative to a stability reference (default "known-only", the Known-only SFT baseline);
- per variant, the *final point* (acquisition, retention) and the *peak-relative forgetting*
  (peak − final) / peak of retention over a run's points (how the paper's 15% → 3% is read).

Uncertainty: one percentile bootstrap per protocol. Each replicate resamples the held-out recalled
questions, the new questions (independently) and the seeds (with replacement, by seed value), and
applies the same draw to every variant, so differences and shares are paired. With one seed the
intervals cover question sampling only.

`analyse` returns a JSON-able summary; `write` puts frontier.json, frontier.md and frontier.png in
OUT/frontier/ (frontier_report.py renders the last two). Pure numpy; no model is loaded.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FactbenchError

SCHEMA = 1
KIND = "factbench frontier"
QUESTIONS = "eval_questions.json"
OUTCOMES = "eval_outcomes.jsonl"
RECIPE_CARD = "recipe_card.json"
PROTOCOL_ORDER = ("4-shot", "0-shot")
LEVEL = 0.95  # interval coverage
LEARNING = 0.2  # a variant whose mean maximum acquisition is at least this is "learning"
LEVEL_STEP = 0.05  # default matched levels are multiples of this
DEFAULT_LEVELS = 5
CHUNK = 250  # bootstrap replicates drawn (and multiplied out) at a time: bounds memory on big question sets
SEED_DIR = re.compile(r"seed-(\d+)")

DESCRIPTIONS = {
    "retention": "share of held-out Known questions the base recalled (guessable '0'; all when guessability "
                 "is unknown) that the fine-tune answers right at an evaluation point (greedy, exact match)",
    "acquisition": "share of new (Unknown, trained-on) questions the fine-tune answers right at an evaluation point",
    "curves": "per variant and evaluation-point index, the mean over seeds of (acquisition, retention); "
              "seeds with more points are cut to the common prefix",
    "matched": "retention when the variant has learned a given share of new facts: per run, linear "
               "interpolation between the two consecutive points where acquisition first reaches the level "
               "(a run already at or past the level at its first point gives that point's retention, and "
               "seeds_past_at_first_point names the runs past it, whose value is not an interpolation); mean "
               "over seeds; 'not reached' when a seed never reaches it",
    "levels": "acquisition levels: given, or 5 evenly spaced multiples of 0.05 above the highest starting "
              "acquisition of any seed of the learning variants (mean maximum acquisition >= 0.2) and at most "
              "the reference's lowest maximum over its seeds (the lowest of any learning variant without a "
              "learning reference); a variant that learns less is 'not reached' above its maximum",
    "differences": "matched retention of the variant minus that of the reference, in absolute terms (positive: "
                   "keeps more facts); paired bootstrap; p_at_or_below_zero is the share of replicates with "
                   "difference <= 0",
    "final_points": "the last evaluation point of each run (acquisition, retention), mean over seeds; how variants "
                    "that never reach the levels (Known-only, attention-only) are reported",
    "share_removed": "(F_ref(a) - F_v(a)) / (F_ref(a) - F_stability), F = 1 - retention, F_stability the final "
                     "forgetting of the stability reference: 1 = the variant forgets no more than the stability "
                     "reference, 0 = as much as the reference; undefined when the denominator's interval reaches 0",
    "peak_relative_forgetting": "per run (peak - final) / peak of retention over its evaluation points, mean over "
                                "seeds",
    "intervals": "95% percentile bootstrap: each replicate resamples held-out recalled questions, new questions "
                 "(independently) and seeds (with replacement, by seed value), the same draw for every variant; "
                 "undefined_replicates counts replicates where the number did not exist (a level not reached)",
}


class FrontierError(FactbenchError):
    """A study folder whose runs cannot be put on one frontier (one line, as every FactbenchError)."""


# ---- loading -------------------------------------------------------------------------------------

@dataclass
class Run:
    """One training run's evaluation outcomes: per protocol, one (acquisition, retention) source per point."""

    variant: str
    seed: int
    path: Path
    ids: dict[str, list[str]]  # set -> question ids (heldout, new, ...)
    guessable: str | None  # the held-out set's guessable string
    split_manifest: str | None
    # protocol -> {"hash", "epochs": [...], "heldout": uint8 (points, recalled), "new": uint8 (points, new)}
    protocols: dict[str, dict] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.variant} seed {self.seed}"


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrontierError(f"{path.parent} has no {path.name} ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FrontierError(f"{path} is not readable JSON ({what}): {e}") from None


def _seed_of(folder: Path, card: dict) -> int:
    """The run's seed: recipe card settings.seed (else its top-level seed / config.seed), else the seed-<N> folder,
    else 0; a card and a folder name that disagree are refused."""
    folder_seed = int(m.group(1)) if (m := SEED_DIR.fullmatch(folder.name)) else None
    card_seed = None
    for where in ((card.get("settings") or {}), card, (card.get("config") or {})):
        if isinstance(where, dict) and where.get("seed") is not None:
            card_seed = where["seed"]
            break
    if card_seed is not None:
        if isinstance(card_seed, bool) or not isinstance(card_seed, int):
            raise FrontierError(f"{folder / RECIPE_CARD}: seed {card_seed!r} is not a whole number")
        if folder_seed is not None and folder_seed != card_seed:
            raise FrontierError(f"{folder} is named seed-{folder_seed} but its recipe card says seed {card_seed}")
        return card_seed
    return folder_seed if folder_seed is not None else 0


def _bits(text, n: int, where: str) -> np.ndarray:
    if not isinstance(text, str) or len(text) != n or text.strip("01"):
        got = f"{len(text)} characters" if isinstance(text, str) else type(text).__name__
        raise FrontierError(f"{where}: expected a string of {n} '0'/'1' characters (one per question), got {got}")
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8) - ord("0")


def load_run(folder: Path | str, variant: str | None = None) -> Run:
    """Read one run folder (recipe_card.json, eval_questions.json, eval_outcomes.jsonl) into a `Run`.

    Refuses (FrontierError) a missing or malformed file, outcome strings that do not match the question
    ids, a held-out set with no recalled question, a protocol whose epochs do not increase or whose hash
    changes within the run.
    """
    folder = Path(folder)
    card = _read_json(folder / RECIPE_CARD, "the recipe card of a finished run")
    if not isinstance(card, dict):
        raise FrontierError(f"{folder / RECIPE_CARD} is not a recipe card (not a JSON object)")
    seed = _seed_of(folder, card)
    questions = _read_json(folder / QUESTIONS, "the evaluation questions the training run wrote")
    sets = questions.get("sets") if isinstance(questions, dict) else None
    if not isinstance(sets, dict):
        raise FrontierError(f"{folder / QUESTIONS} has no \"sets\" object")
    ids, guessable = {}, None
    for name in ("heldout", "new"):
        entry = sets.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("ids"), list) or not entry["ids"]:
            raise FrontierError(f"{folder / QUESTIONS}: the {name!r} set is missing or has no question ids")
    for name, entry in sets.items():
        if isinstance(entry, dict) and isinstance(entry.get("ids"), list):
            ids[name] = [str(i) for i in entry["ids"]]
    g = sets["heldout"].get("guessable")
    if g is not None:
        _bits(g, len(ids["heldout"]), f"{folder / QUESTIONS} heldout guessable")
        guessable = g
    recalled = np.ones(len(ids["heldout"]), dtype=bool) if guessable is None else \
        _bits(guessable, len(ids["heldout"]), "guessable") == 0
    if not recalled.any():
        raise FrontierError(f"{folder / QUESTIONS}: every held-out question is guessable; retention is undefined")
    run = Run(variant or folder.name, seed, folder, ids, guessable, questions.get("split_manifest_sha256"))

    path = folder / OUTCOMES
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FrontierError(f"{folder} has no {OUTCOMES} (a run trained before per-point outcomes were "
                            "recorded, or one still training)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FrontierError(f"{path} is not readable: {e}") from None
    rows: dict[str, list] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise FrontierError(f"{where} is not JSON: {e}") from None
        if not isinstance(row, dict) or not isinstance(row.get("protocol"), str) or not isinstance(row.get("sets"), dict):
            raise FrontierError(f"{where} has no \"protocol\" and \"sets\"")
        epoch = row.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
            raise FrontierError(f"{where}: epoch {epoch!r} is not a number")
        proto = row["protocol"]
        if row.get("base") and proto == "0-shot":
            # The base model is asked 4-shot only (it has not learnt the Q:/A: format): its 0-shot point would
            # read as forgetting what it never answered. 0-shot trajectories start at the first trained point.
            continue
        held = _bits(row["sets"].get("heldout"), len(ids["heldout"]), f"{where} heldout")
        new = _bits(row["sets"].get("new"), len(ids["new"]), f"{where} new")
        seen = rows.setdefault(proto, [])
        if seen and epoch <= seen[-1][0]:
            raise FrontierError(f"{where}: {proto} epoch {epoch} does not follow epoch {seen[-1][0]} "
                                "(points must be in training order)")
        if seen and row.get("protocol_hash") != seen[0][1]:
            raise FrontierError(f"{where}: {proto} protocol hash {row.get('protocol_hash')} differs from the "
                                f"run's first {proto} point ({seen[0][1]})")
        seen.append((epoch, row.get("protocol_hash"), held[recalled], new))
    if not rows:
        raise FrontierError(f"{path} has no evaluation points")
    for proto, seen in rows.items():
        run.protocols[proto] = {"hash": seen[0][1], "epochs": [r[0] for r in seen],
                                "heldout": np.stack([r[2] for r in seen]), "new": np.stack([r[3] for r in seen])}
    return run


def discover(out_dir: Path | str) -> tuple[list[Run], list[str]]:
    """Every finished run under OUT/models/<variant>/ or OUT/models/<variant>/seed-<N>/, and notes on what was skipped.

    A folder without recipe_card.json (unfinished) is skipped with a note; two runs of one variant with the
    same seed, or no run at all, are refused.
    """
    models = Path(out_dir) / "models"
    if not models.is_dir():
        raise FrontierError(f"{out_dir} has no models/ folder (a study holds its fine-tunes in OUT/models/<variant>/)")
    runs, notes = [], []
    for vdir in sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")):
        folders = [vdir] if (vdir / RECIPE_CARD).exists() else \
            sorted((p for p in vdir.iterdir() if p.is_dir() and SEED_DIR.fullmatch(p.name)),
                   key=lambda p: int(SEED_DIR.fullmatch(p.name).group(1)))
        found = []
        for folder in folders:
            if not (folder / RECIPE_CARD).exists():
                notes.append(f"{folder} skipped: no {RECIPE_CARD} (unfinished run)")
                continue
            run = load_run(folder, vdir.name)
            if any(r.seed == run.seed for r in found):
                raise FrontierError(f"{vdir}: two runs with seed {run.seed}")
            found.append(run)
        if not folders:
            notes.append(f"{vdir} skipped: no {RECIPE_CARD} and no seed-<N>/ runs")
        runs += found
    if not runs:
        raise FrontierError(f"{models} holds no finished run (no {RECIPE_CARD})")
    return runs, notes


def check_same_questions(runs: list[Run]) -> None:
    """Refuse runs that were not evaluated on the same questions (held-out ids, guessability, new ids, split)."""
    first = runs[0]
    for run in runs[1:]:
        for name in sorted(set(first.ids) | set(run.ids)):
            if name in first.ids and name in run.ids and first.ids[name] != run.ids[name] \
                    or name in ("heldout", "new") and (name not in first.ids or name not in run.ids):
                raise FrontierError(f"{run.name} and {first.name} were evaluated on different {name} questions "
                                    f"({run.path / QUESTIONS} vs {first.path / QUESTIONS}); a frontier needs one split")
        if run.guessable != first.guessable:
            raise FrontierError(f"{run.name} and {first.name} mark different held-out questions as guessable")
        if run.split_manifest and first.split_manifest and run.split_manifest != first.split_manifest:
            raise FrontierError(f"{run.name} and {first.name} were trained on different splits "
                                f"(split manifests {run.split_manifest[:12]} vs {first.split_manifest[:12]})")


def protocols_of(runs: list[Run]) -> list[str]:
    """The protocols every run evaluated, in report order; a protocol some runs lack, or whose hash differs
    between runs, is refused."""
    names = set().union(*(r.protocols for r in runs))
    for proto in sorted(names):
        missing = [r.name for r in runs if proto not in r.protocols]
        if missing:
            have = [r.name for r in runs if proto in r.protocols]
            raise FrontierError(f"protocol {proto!r} is evaluated in {', '.join(have)} but missing in "
                                f"{', '.join(missing)}; every run must evaluate the same protocols")
        hashes = {r.protocols[proto]["hash"] for r in runs}
        if len(hashes) > 1:
            raise FrontierError(f"protocol {proto!r} was asked with different settings across runs "
                                f"(hashes {', '.join(sorted(map(str, hashes)))})")
    return sorted(names, key=lambda p: (PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else len(PROTOCOL_ORDER), p))


# ---- per-run quantities (vectorised over replicates: arrays of shape (points, replicates)) --------

def at_level(acq: np.ndarray, ret: np.ndarray, level: float) -> np.ndarray:
    """Retention where acquisition first reaches `level`, by linear interpolation with the point before.

    acq and ret have shape (points,) or (points, replicates); the result has shape () or (replicates,),
    NaN where the level is never reached. A run at or above the level at its first point gives that point.
    """
    acq, ret = np.asarray(acq, dtype=float), np.asarray(ret, dtype=float)
    reached = acq >= level - 1e-12
    j = np.argmax(reached, axis=0)
    ever = reached.any(axis=0)
    prev = np.maximum(j - 1, 0)
    take = lambda a, i: np.take_along_axis(a, np.expand_dims(i, 0), axis=0)[0] if a.ndim > 1 else a[i]  # noqa: E731
    a0, a1, r0, r1 = take(acq, prev), take(acq, j), take(ret, prev), take(ret, j)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(j > 0, (level - a0) / (a1 - a0), 1.0)
    value = r0 + np.clip(t, 0.0, 1.0) * (r1 - r0)
    return np.where(ever, value, np.nan)


def peak_relative(ret: np.ndarray) -> np.ndarray:
    """(peak − final) / peak of retention over the points (axis 0); NaN when the peak is 0."""
    ret = np.asarray(ret, dtype=float)
    peak = ret.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(peak > 0, (peak - ret[-1]) / peak, np.nan)


# ---- the bootstrap ----------------------------------------------------------------------------------

def _ci(point, reps) -> dict:
    """{"value", "low", "high", "undefined_replicates"}: percentile interval over the replicates where the number
    exists; all None when the point estimate does not exist."""
    point = float(point)
    reps = np.asarray(reps, dtype=float)
    finite = reps[np.isfinite(reps)]
    undefined = int(reps.size - finite.size)
    if not math.isfinite(point) or finite.size == 0:
        return {"value": None, "low": None, "high": None, "undefined_replicates": undefined}
    low, high = np.quantile(finite, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return {"value": point, "low": float(low), "high": float(high), "undefined_replicates": undefined}


class Replicates:
    """The per-run trajectories of one protocol, at the observed questions and under every bootstrap replicate.

    `traj[run_key]` = (acq, ret): observed, shape (points,); `reps[run_key]` = (acq, ret) of shape
    (points, n_boot). `seed_draws[variant]` = (n_boot, k) indices into that variant's sorted seeds; when
    every variant has the same seeds, one draw is shared by all (paired).
    """

    def __init__(self, by_variant: dict[str, list[Run]], protocol: str, n_boot: int, seed: int, paired: bool):
        self.by_variant, self.n_boot, self.paired = by_variant, n_boot, paired
        first = next(iter(by_variant.values()))[0].protocols[protocol]
        n_h, n_n = first["heldout"].shape[1], first["new"].shape[1]
        rng = np.random.default_rng(seed)
        self.traj, self.reps = {}, {}
        runs = [r for rs in by_variant.values() for r in rs]
        for r in runs:
            p = r.protocols[protocol]
            self.traj[id(r)] = (p["new"].mean(axis=1), p["heldout"].mean(axis=1))
            self.reps[id(r)] = (np.empty((len(p["epochs"]), n_boot)), np.empty((len(p["epochs"]), n_boot)))
        for start in range(0, n_boot, CHUNK):
            size = min(CHUNK, n_boot - start)
            w_h = rng.multinomial(n_h, np.full(n_h, 1 / n_h), size=size).T.astype(float)  # (n_h, size) counts
            w_n = rng.multinomial(n_n, np.full(n_n, 1 / n_n), size=size).T.astype(float)
            for r in runs:
                p, (acq, ret) = r.protocols[protocol], self.reps[id(r)]
                acq[:, start:start + size] = p["new"].astype(float) @ w_n / n_n
                ret[:, start:start + size] = p["heldout"].astype(float) @ w_h / n_h
        if paired:
            k = len(next(iter(by_variant.values())))
            draw = rng.integers(0, k, size=(n_boot, k))
            self.seed_draws = {v: draw for v in by_variant}
        else:
            self.seed_draws = {v: rng.integers(0, len(rs), size=(n_boot, len(rs))) for v, rs in by_variant.items()}

    def variant(self, v: str, per_run) -> tuple[float, np.ndarray]:
        """Mean over v's seeds of `per_run(acq, ret)` (a scalar per run, or (n_boot,) under replicates):
        the observed value and its n_boot replicates (NaN where any drawn seed gives NaN)."""
        runs = self.by_variant[v]
        observed = np.array([per_run(*self.traj[id(r)]) for r in runs], dtype=float)  # (k,)
        reps = np.stack([per_run(*self.reps[id(r)]) for r in runs], axis=1)  # (n_boot, k)
        drawn = np.take_along_axis(reps, self.seed_draws[v], axis=1)
        return float(observed.mean()), drawn.mean(axis=1)


# ---- the analysis -----------------------------------------------------------------------------------

def default_levels(runs_by_variant: dict[str, list[Run]], protocol: str, learning: list[str],
                   reference: str | None = None) -> tuple[list, list]:
    """Up to 5 evenly spaced multiples of 0.05 in (highest first-point acquisition over every seed of the
    learning variants, lowest maximum acquisition over the reference's seeds], and that range; no levels
    when the range is empty. The reference reaches every level; a variant that learns less is "not
    reached" at the levels above its maximum (the levels do not shrink to the slowest learner's range,
    where every recipe is still near its start). Without a learning reference: the lowest maximum over
    every learning variant."""
    if not learning:
        return [], [None, None]
    acqs = [r.protocols[protocol]["new"].mean(axis=1) for v in learning for r in runs_by_variant[v]]
    tops = acqs if reference not in learning else [
        r.protocols[protocol]["new"].mean(axis=1) for r in runs_by_variant[reference]]
    lo, hi = max(float(a[0]) for a in acqs), min(float(a.max()) for a in tops)
    k_lo, k_hi = math.floor(lo / LEVEL_STEP + 1e-9) + 1, math.floor(hi / LEVEL_STEP + 1e-9)
    if k_lo > k_hi:
        return [], [lo, hi]
    ks = sorted({math.floor(k + 0.5) for k in np.linspace(k_lo, k_hi, DEFAULT_LEVELS)})  # halves up
    return [round(k * LEVEL_STEP, 4) for k in ks], [lo, hi]


def _protocol(by_variant, protocol, reference, stability, levels, n_boot, seed, paired) -> dict:
    reps = Replicates(by_variant, protocol, n_boot, seed, paired)
    notes = []
    variants = list(by_variant)

    # curves, on the common prefix of each variant's seeds
    curves = {}
    for v in variants:
        lengths = [len(r.protocols[protocol]["epochs"]) for r in by_variant[v]]
        n = min(lengths)
        epochs = [r.protocols[protocol]["epochs"][:n] for r in by_variant[v]]
        vnotes = []
        if len(set(lengths)) > 1:
            vnotes.append(f"{v}: seeds have {', '.join(map(str, lengths))} {protocol} points; the curve uses the "
                          f"first {n} of each")
        if any(e != epochs[0] for e in epochs[1:]):
            vnotes.append(f"{v}: seeds were evaluated at different epochs; points are matched by index")
        notes += vnotes
        points = []
        for i in range(n):
            acq = reps.variant(v, lambda a, r, i=i: a[i])
            ret = reps.variant(v, lambda a, r, i=i: r[i])
            points.append({"index": i, "epoch": epochs[0][i], "acquisition": _ci(*acq), "retention": _ci(*ret)})
        curves[v] = {"points": points, "notes": vnotes}

    max_acq = {v: reps.variant(v, lambda a, r: a.max(axis=0))[0] for v in variants}
    learning = [v for v in variants if max_acq[v] >= LEARNING]
    non_learning = [v for v in variants if v not in learning]
    if levels is None:
        levels, level_range = default_levels(by_variant, protocol, learning, reference)
        source = "default"
        if not levels:
            notes.append("no default acquisition levels: " + (
                "no variant learns (mean maximum acquisition >= 20%)" if not learning else
                f"the learning variants' acquisition ranges do not overlap "
                f"(highest start {100 * level_range[0]:.1f}%, lowest maximum {100 * level_range[1]:.1f}%)"))
    else:
        level_range, source = [None, None], "given"

    # per-variant finals and peak-relative forgetting (each run's own last point)
    finals, peak = {}, {}
    final_reps = {}
    for v in variants:
        fa = reps.variant(v, lambda a, r: a[-1])
        fr = reps.variant(v, lambda a, r: r[-1])
        final_reps[v] = fr
        finals[v] = {"acquisition": _ci(*fa), "retention": _ci(*fr)}
        peak[v] = {"peak_relative_forgetting": _ci(*reps.variant(v, lambda a, r: peak_relative(r))),
                   "final_retention": finals[v]["retention"], "final_acquisition": finals[v]["acquisition"],
                   "peak_retention": _ci(*reps.variant(v, lambda a, r: r.max(axis=0)))}

    # matched acquisition
    matched_reps = {v: [reps.variant(v, lambda a, r, x=x: at_level(a, r, x)) for x in levels] for v in learning}
    matched = {}
    for v in learning:
        rows = []
        for x, (obs, rep) in zip(levels, matched_reps[v], strict=True):
            missing = [r.seed for r in by_variant[v] if not np.isfinite(at_level(*reps.traj[id(r)], x))]
            # a level below a run's first point was passed before it was measured (only given levels can be:
            # the default ones lie above every learning run's start): at_level reads the first point there
            past = [r.seed for r in by_variant[v] if reps.traj[id(r)][0][0] > x + 1e-12]
            rows.append({"level": x, "retention": _ci(obs, rep), "reached": not missing,
                         "seeds_not_reaching": missing, "seeds_past_at_first_point": past})
        matched[v] = rows

    differences, share = {}, {}
    share_note = None
    if reference not in learning:
        share_note = f"reference {reference!r} does not learn (mean maximum acquisition < 20%) under {protocol}; " \
                     "no matched differences"
        notes.append(share_note)
    elif not paired:
        share_note = "differences and shares not computed: variants have different seeds, so they cannot be paired"
        notes.append(share_note)
    else:
        for v in learning:
            if v == reference:
                continue
            rows = []
            for x, (obs, rep), (robs, rrep) in zip(levels, matched_reps[v], matched_reps[reference], strict=True):
                d = rep - rrep
                finite = d[np.isfinite(d)]
                rows.append({"level": x, **_ci(obs - robs, d),
                             "p_at_or_below_zero": float(np.mean(finite <= 0)) if finite.size and
                             math.isfinite(obs - robs) else None})
            differences[v] = rows
    stability_final = None
    if stability in variants and reference in learning and paired:
        ko_obs, ko_rep = final_reps[stability]
        stability_final = {"forgetting": _ci(1 - ko_obs, 1 - ko_rep), "retention": finals[stability]["retention"]}
        for v in learning:
            if v in (reference, stability):
                continue
            rows = []
            for x, (obs, rep), (robs, rrep) in zip(levels, matched_reps[v], matched_reps[reference], strict=True):
                den_obs, den_rep = ko_obs - robs, ko_rep - rrep  # F_ref(a) - F_ko
                den = _ci(den_obs, den_rep)
                row = {"level": x, "denominator": den}
                if den["value"] is None:
                    row.update(value=None, low=None, high=None, undefined_replicates=den["undefined_replicates"],
                               undefined_because="the reference does not reach this level")
                elif den["low"] <= 0:
                    row.update(value=None, low=None, high=None, undefined_replicates=den["undefined_replicates"],
                               undefined_because=f"{reference} forgets {100 * den['value']:+.1f} points more "
                                                 f"than {stability} does by its end, an interval reaching "
                                                 f"{100 * den['low']:+.1f} (<= 0): no measured forgetting for "
                                                 "a share to remove")
                else:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        sr = np.where(den_rep > 0, (rep - rrep) / den_rep, np.nan)
                    row.update(_ci((obs - robs) / den_obs, sr))
                    row["undefined_because"] = None
                rows.append(row)
            share[v] = rows
    elif stability not in variants:
        notes.append(f"no variant named {stability!r} (the stability reference): share of forgetting removed "
                     "not computed")

    return {
        "protocol_hash": by_variant[variants[0]][0].protocols[protocol]["hash"],
        "learning": learning, "non_learning": non_learning,
        "mean_max_acquisition": max_acq,
        "levels": levels, "levels_source": source, "level_range": level_range,
        "curves": curves, "matched": matched, "differences": differences,
        "final_points": finals, "stability_final": stability_final, "share_removed": share,
        "peak_relative": peak, "notes": notes,
    }


def analyse(out_dir: Path | str, reference: str = "sft", stability: str = "known-only",
            levels: list[float] | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """The frontier of the study in `out_dir`: curves, matched-acquisition retention and paired differences,
    final points, share of forgetting removed and peak-relative forgetting, per protocol, as a JSON-able dict.

    `reference` is the variant the others are compared with; `stability` the variant whose final forgetting
    is the floor for "share of forgetting removed"; `levels` acquisition levels in (0, 1] (default: see
    DESCRIPTIONS["levels"]); `n_boot` bootstrap replicates with seed `seed` (same inputs and seed: same numbers).
    """
    if n_boot < 1:
        raise FrontierError(f"n_boot must be at least 1, got {n_boot}")
    if levels is not None:
        bad = [x for x in levels if not (0 < x <= 1)]
        if bad or not levels:
            raise FrontierError(f"acquisition levels must be numbers in (0, 1], got {levels}")
        levels = sorted({float(x) for x in levels})
    runs, skipped = discover(out_dir)
    check_same_questions(runs)
    protocols = protocols_of(runs)
    by_variant: dict[str, list[Run]] = {}
    for r in sorted(runs, key=lambda r: (r.variant, r.seed)):
        by_variant.setdefault(r.variant, []).append(r)
    if reference not in by_variant:
        raise FrontierError(f"no variant named {reference!r} (the reference) in {Path(out_dir) / 'models'}; "
                            f"variants: {', '.join(by_variant)}")
    # the reference first, the stability reference last, the rest by name
    order = sorted(by_variant, key=lambda v: (v != reference, v == stability, v))
    by_variant = {v: by_variant[v] for v in order}
    seeds = {v: [r.seed for r in rs] for v, rs in by_variant.items()}
    paired = len({tuple(s) for s in seeds.values()}) == 1
    notes = list(skipped)
    if not paired:
        notes.append("variants have different seeds (" + "; ".join(f"{v}: {', '.join(map(str, s))}"
                                                                    for v, s in seeds.items()) +
                     "): differences and shares are not computed, because they pair seeds by value")
    first = runs[0]
    n_seeds = {len(s) for s in seeds.values()}
    if n_seeds == {1}:
        notes.append("one seed per variant: intervals cover question sampling only, not seed-to-seed variation")
    elif 1 in n_seeds:
        notes.append("some variants have one seed: their intervals cover question sampling only")
    recalled = len(first.ids["heldout"]) if first.guessable is None else first.guessable.count("0")
    return {
        "schema": SCHEMA, "kind": KIND, "study": str(out_dir),
        "reference": reference, "stability": stability,
        "variants": list(by_variant), "seeds": seeds, "paired_seeds": paired,
        "runs": [{"variant": r.variant, "seed": r.seed, "path": str(r.path),
                  "points": {p: len(r.protocols[p]["epochs"]) for p in protocols}} for rs in by_variant.values()
                 for r in rs],
        "questions": {"heldout": len(first.ids["heldout"]), "heldout_recalled": recalled,
                      "heldout_guessable": len(first.ids["heldout"]) - recalled,
                      "guessability_known": first.guessable is not None, "new": len(first.ids["new"])},
        "split_manifest_sha256": first.split_manifest,
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": LEVEL, "method": "percentile",
                      "resampled": ["held-out recalled questions", "new questions", "seeds (by seed value)"],
                      "paired": paired},
        "protocol_hashes": {p: first.protocols[p]["hash"] for p in protocols},
        "protocols": {p: _protocol(by_variant, p, reference, stability, levels, n_boot, seed, paired)
                      for p in protocols},
        "descriptions": DESCRIPTIONS,
        "notes": notes,
    }


def write(out_dir: Path | str, summary: dict, folder: Path | str | None = None) -> dict[str, Path]:
    """Write frontier.json, frontier.md and frontier.png (each whole or absent) into `folder`, default
    OUT/frontier; return their paths."""
    from . import frontier_report
    from .files import write_json, write_text

    folder = Path(out_dir) / "frontier" if folder is None else Path(folder)
    paths = {"json": folder / "frontier.json", "md": folder / "frontier.md", "png": folder / "frontier.png"}
    write_json(paths["json"], summary)
    write_text(paths["md"], frontier_report.markdown(summary))
    frontier_report.plot(summary, paths["png"])
    return paths
