"""What the base model recalls among the audit questions: a greedy knowledge profile, cached.

The base's side of an audit is a knowledge profile (`factbench.knowledge`) of the audit pool
under a greedy-only budget: K prompts x 1 greedy answer, no samples. Each question gets, as in
any profile, its SliCK category from the greedy answers (HighlyKnown = right under every prompt,
MaybeKnown = under some) and the guess evidence (answer in the question, exemplar copies, the
subject-blind control from other audit questions' answers under the same prompts: no extra
generation). A fact the base **recalls** is the profile's `known`: HighlyKnown and not guessable.
Without samples a question never right greedily cannot be told WeaklyKnown from Unknown; the
audit card says "WeaklyKnown or Unknown (not sampled)" for it.

The profile is cached by what determines it: the weights' content hash, engine, dtype, preset and
protocol. A second fine-tune of the same base therefore asks only the fine-tune. factbench ships
the bundled SmolLM2-135M's profile for the `small` preset (hf engine, float32), so auditing a
SmolLM2 fine-tune on a CPU needs no base pass at all.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .. import knowledge, models
from ..errors import DataError
from ..files import cache_dir
from ..knowledge import Budget, ProbeSettings, Profile
from ..protocol import protocol_hash
from . import questions

BUNDLED_DIR = Path(__file__).parent / "bundled"
NOT_SAMPLED = "WeaklyKnown or Unknown (not sampled)"


def settings(preset: str) -> ProbeSettings:
    """The probe settings of a preset's base pass: K prompts, greedy only, default guess rule."""
    p = questions.preset(preset)
    return ProbeSettings(budget=Budget(f"audit-{p.name}", p.prompts, 0, trade_off=(
        f"greedy only, {p.prompts} prompts: HighlyKnown / MaybeKnown as SliCK; WeaklyKnown and Unknown "
        "not told apart (no samples)")))


def expected_protocol(identity: dict, engine: str, dtype: str, preset: str) -> dict:
    """The probe protocol a base pass would record, without loading the model (for the cache look-up)."""
    s, pool = settings(preset), questions.pool(preset)
    return {"questions": s.question_protocol(), "budget": asdict(s.budget) | {"trade_off": None},
            "sample_seed": s.sample_seed, "guess": asdict(s.guess),
            "pool": asdict(pool) | {"relations": list(pool.relations)}, "engine": engine, "dtype": dtype,
            "model": identity}


def _same_base(manifest: dict, want: dict) -> bool:
    """The same weights (content hash) asked the same way; the model's path or name may differ."""
    got = manifest.get("probe_protocol") if isinstance(manifest, dict) else None
    if not isinstance(got, dict):
        return False  # not a profile manifest (damaged): never a match
    if not want["model"].get("content_sha256"):
        same_model = got.get("model") == want["model"]  # a hub id without local weights: name and revision
    else:
        model = got.get("model")
        same_model = isinstance(model, dict) and model.get("content_sha256") == want["model"]["content_sha256"]
    rest = ("questions", "budget", "sample_seed", "guess", "pool", "engine", "dtype")
    return same_model and all(got.get(k) == want[k] for k in rest)


def cache_folder(want: dict) -> Path:
    model = want["model"]
    key = protocol_hash({k: v for k, v in want.items() if k != "model"}
                        | {"model": model.get("content_sha256") or model})
    return cache_dir() / "audit-base" / key


def find_cached(want: dict) -> Path | None:
    """A finished base profile for these weights and settings: bundled first, then the user cache."""
    candidates = sorted(BUNDLED_DIR.glob("*/manifest.json")) + [cache_folder(want) / "manifest.json"]
    for manifest_path in candidates:
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # unreadable: not this base's (a damaged cache entry is asked again below)
        if _same_base(manifest, want):
            return manifest_path.parent
    return None


def resolved_dtype(engine: str, dtype: str) -> str:
    """The dtype the engine will run in ('auto' resolved as the engine resolves it)."""
    if engine != "hf":
        return dtype
    import torch

    from ..engines.hf import pick_dtype

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return str(pick_dtype(dtype, device)).removeprefix("torch.")


def base_profile(spec: str, preset: str = questions.DEFAULT_PRESET, *, engine: str = "hf", dtype: str = "auto",
                 revision: str | None = None, batch_size: int | None = None, use_cache: bool = True,
                 echo=print) -> tuple[Profile, str]:
    """The base's audit profile and where it came from ("bundled", "cache" or "asked now").

    `use_cache=False` asks the base again whatever is bundled or cached (the new answers replace the
    cached ones)."""
    from ..engines import make_engine

    _, identity = models.model_folder(spec, revision)
    want = expected_protocol(identity, engine, resolved_dtype(engine, dtype), preset)
    found = find_cached(want) if use_cache else None
    if found is not None:
        source = "bundled" if BUNDLED_DIR in found.parents else "cache"
        try:
            profile = knowledge.load_profile(found)
        except DataError as e:
            if source == "bundled":
                raise DataError(f"the bundled audit profile is damaged ({e}); reinstall factbench") from None
            echo(f"base: the cached audit answers of {identity.get('name')} are damaged ({e}): asking again")
        else:
            echo(f"base: using the {source} audit answers of {identity.get('name')} ({found})")
            return profile, source
    p = questions.preset(preset)
    echo(f"base: asking {identity.get('name')} the {len(questions.facts(preset))} {preset} audit questions under "
         f"{p.prompts} prompts (cached for later audits of the same base)")
    runner = make_engine(engine, spec, revision=revision, dtype=dtype, batch_size=batch_size)
    out = cache_folder(want)
    if (out / "manifest.json").exists():  # damaged, or made under a protocol the look-up did not predict
        import shutil

        try:
            shutil.rmtree(out)
        except OSError as e:
            raise DataError(f"cannot remove the stale cached audit profile {out} ({e.strerror or e}); "
                            "remove it by hand and rerun") from None
    knowledge.probe(runner, questions.pool(preset), settings(preset), out)
    return knowledge.load_profile(out), "asked now"


def rows_from_answers(greedy: dict[tuple[str, int], str], preset: str) -> list[dict]:
    """Profile rows from greedy answers logged elsewhere (an lm-eval run): the same labelling as a probe."""
    return knowledge.label(questions.facts(preset), greedy, {}, settings(preset))
