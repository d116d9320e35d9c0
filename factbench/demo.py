"""`factbench demo`: the whole loop, offline on a CPU, on a real model or on the toy world.

    split -> train (plain SFT, attention-only, self-distillation, Known-only) -> score each against
    the base -> leaderboard -> comparison table and plots

Every stage writes into OUT and is reused by a rerun once finished (a trained model has its
recipe card, a scored model its score card), so an interrupted demo picks up where it stopped.
Each stage's output appears whole or not at all (written beside its place, then renamed), a
finished output that no longer reads (a truncated card) is made again, and a write failure (a
full disk) is one line. `OUT/demo.json` records the settings; a rerun with other settings into
the same OUT is refused rather than mixing results, and so is an OUT whose demo.json does not
read (only `--fresh` starts that one over). One demo writes into an OUT at a time.

Worlds:
- `smollm2` (default): SmolLM2-135M-Instruct (bundled weights) and its bundled P17 knowledge
  profile. Held-out facts include the ones the model could guess (splits' include_guessable), so
  every score card reports retention on recalled facts as the headline and on guessable facts
  separately: the effect of the guess filter, measured.
- `toy`: the toy world (factbench.toyworld), a model whose knowledge was decided by construction.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import answer_sources, fine_tune_jobs, knowledge, leaderboard, scorecard, splits
from .errors import FactbenchError, WriteError
from .files import atomic_path, make_dirs, output_lock, read_dict, write_json, write_text
from .fine_tune_jobs import Job

DEMO_SCHEMA = 1


@dataclass(frozen=True)
class Variant:
    """One fine-tune of the demo: a recipe plus the settings that make it this variant."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    what: str = ""


VARIANTS = (
    Variant("sft", "sft", (), "plain SFT, all parameters, Known + Unknown facts"),
    Variant("attention-only", "freeze", ("trainable=attention",), "FFN/MLP, embeddings and head frozen"),
    Variant("self-distillation", "selfdistill", (), "stage 1 Known-only teacher, then CE + λτ²KL"),
    Variant("known-only", "known-only", (), "SFT on the Known training facts only: the stability reference"),
    # The frontier study's other recipes and the published method's named deviations (METHOD.md §4).
    Variant("ffn-only", "freeze", ("trainable=ffn",), "only the FFN/MLP trains"),
    Variant("sd-published", "selfdistill", ("kl_on=answer", "student_init=teacher"),
            "the published self-distillation: student from the teacher, KL at answer tokens"),
    Variant("sd-kl-all", "selfdistill", ("kl_on=all", "student_init=teacher"),
            "deviation: KL on every token of Q: ...\\nA: ..."),
    Variant("sd-student-base", "selfdistill", ("kl_on=answer", "student_init=base"),
            "deviation: the student starts from the base, not the teacher"),
    Variant("l2-matched", "l2anchor", ("l2_anchor=stage1", "l2_lambda=matched"),
            "L2 pull to the teacher's weights, its gradient matched to the distillation term's"),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


@dataclass(frozen=True)
class World:
    name: str
    model: str  # model spec of the base (factbench.models)
    config: str  # bundled recipe config the variants start from
    overrides: tuple[str, ...]  # demo-scale settings on top of it
    split: dict = field(default_factory=dict)  # SplitSettings fields (smollm2) or {"toy": preset}
    profile: str | None = None  # bundled profile name
    variants: tuple[str, ...] = ("sft", "attention-only", "self-distillation", "known-only")
    seeds: tuple[int, ...] = (0,)  # training seeds; with more than one, models/<variant>/seed-<N>
    score_cards: bool = True  # score every fine-tune (cards, leaderboard); the frontier needs only its training log


WORLDS = {
    # Settings chosen by measurement (README, "The demo"): lr 1e-4 x 4 epochs is enough for SFT to
    # learn ~90% of the new facts and small enough for 15 minutes on two CPU cores; self-distillation
    # with the KL on every token learned 70% of them, with the KL on answer tokens only (the
    # published default) 41%, for about the same forgetting. Per-epoch evaluation (the frontier) is cut
    # to 30 recalled held-out and 30 new questions, under both protocols, to keep the demo within 15
    # minutes on 2 cores (BENCHMARKS.md); the score cards use every question.
    "smollm2": World(
        name="smollm2", model="smollm2-135m", config="smollm2_demo", profile="smollm2-135m-p17",
        overrides=("learning_rate=1e-4", "num_train_epochs=4", "kl_on=all", "eval_limit=30",
                   "eval_sets=[heldout,new]", "eval_protocols=[4-shot,0-shot]", "eval_guessable=false"),
        split={"known": 80, "unknown": 80, "heldout": 200, "ood": 0, "relations": ("P17",),
               "include_guessable": True, "min_known_share": 0.0, "seed": 0},
    ),
    # toy.yaml's settings as they are (see its header for why).
    "toy": World(name="toy", model="toy:demo", config="toy", overrides=(), split={"toy": "demo"}),
    # The frontier study (README, "The frontier study"): every recipe and the published method's deviations,
    # three seeds, at the largest scale the bundled 4,000-question P17 profile allows: every recalled fact
    # held out, the Known training facts MaybeKnown ones that are not guessable (the guessable HighlyKnown
    # ones are 93% "United States of America": splits.py), 300 + 300 training facts, the whole held-out
    # and new sets asked under both protocols at every evaluation point.
    "frontier": World(
        name="frontier", model="smollm2-135m", config="smollm2_demo", profile="smollm2-135m-p17-4000",
        overrides=("learning_rate=1e-4", "num_train_epochs=3", "per_device_train_batch_size=8",
                   "eval_limit=null", "eval_sets=[heldout,new]", "eval_protocols=[4-shot,0-shot]"),
        split={"known": 300, "unknown": 300, "heldout": None, "ood": 0, "relations": ("P17",),
               "train_known": "maybe", "min_known_share": 0.0, "seed": 0},
        variants=("sft", "attention-only", "ffn-only", "sd-published", "sd-kl-all", "sd-student-base",
                  "l2-matched", "known-only"),
        seeds=(0, 1, 2), score_cards=False),
}


def settings_record(world: World, variants: tuple[Variant, ...]) -> dict:
    record = {"schema": DEMO_SCHEMA, "world": asdict(world), "variants": [asdict(v) for v in variants]}
    return json.loads(json.dumps(record))  # tuples as lists: comparable with what demo.json reads back


def _contents(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name != ".lock"] if out.is_dir() else []


def read_state(marker: Path) -> dict:
    """The settings record of `OUT/demo.json`; a file that does not read as one is refused in one line."""
    try:
        state = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problem = f"cannot be read ({e.strerror or e})" if isinstance(e, OSError) else "is not valid JSON (truncated?)"
        raise FactbenchError(f"{marker} (the demo's record of its settings) {problem}; the results beside it "
                             "cannot be matched to settings: rerun with --fresh to start over, or use another "
                             "--out") from None
    if not isinstance(state, dict) or not isinstance(state.get("settings"), dict):
        raise FactbenchError(f"{marker} is not a demo record ({{\"settings\": {{...}}}}); the results beside it "
                             "cannot be matched to settings: rerun with --fresh to start over, or use another --out")
    return state["settings"]


def check_out(out: Path, record: dict, fresh: bool) -> None:
    """Reuse OUT only for the same settings; `fresh` may start over (in `run`, under the lock). Writes nothing."""
    marker = out / "demo.json"
    if out.exists() and not out.is_dir():
        raise FactbenchError(f"--out {out} is a file")
    contents = _contents(out)
    if not contents:
        return
    if not marker.is_file():
        if fresh:
            raise FactbenchError(f"{out} holds files that are not a demo run; --fresh deletes only demo runs")
        raise FactbenchError(f"{out} holds files that are not a demo run; choose another --out")
    if fresh:
        return
    if read_state(marker) != record:
        raise FactbenchError(f"{out} holds a demo run with other settings; use another --out, or --fresh "
                             "to start over")


@contextmanager
def _written(target: Path) -> Iterator[Path]:
    """atomic_path for a folder, whose write errors name `target` rather than the temporary folder."""
    with atomic_path(target) as tmp:
        try:
            yield tmp
        except WriteError as e:
            raise WriteError(str(e).replace(str(tmp), str(target))) from None


def make_split(world: World, out: Path, echo=print) -> Path:
    """The demo's split: from the bundled profile (smollm2) or the toy world's own (toy)."""
    target = out / "split"
    if (target / "manifest.json").is_file():
        echo(f"  reusing {target}")
        return target
    if target.exists():
        shutil.rmtree(target)  # an earlier version's half-made split
    shutil.rmtree(target.with_name("split.tmp"), ignore_errors=True)
    if "toy" in world.split:
        from .toyworld import toy_split

        echo(f"  building (or reusing from the cache) toy world {world.split['toy']!r} and labelling its facts")
        source = toy_split(world.split["toy"])
        with _written(target) as tmp:
            for path in sorted(source.rglob("*")):
                if path.name == ".lock":
                    continue
                if path.is_dir():
                    (tmp / path.relative_to(source)).mkdir(parents=True, exist_ok=True)
                else:
                    (tmp / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, tmp / path.relative_to(source))
    else:
        profile = knowledge.load_profile(knowledge.bundled_profile_dir(world.profile))
        settings = splits.SplitSettings(**world.split)
        with _written(target) as tmp:
            splits.make_split(profile, settings, tmp)
    return target


def model_dir(world: World, variant: Variant, seed: int, out: Path) -> Path:
    """Where a fine-tune goes: models/<variant> for a one-seed world, models/<variant>/seed-<N> otherwise."""
    folder = out / "models" / variant.name
    return folder if len(world.seeds) == 1 else folder / f"seed-{seed}"


def plan(world: World, variant: Variant, split_dir: Path, out: Path, echo=print,
         seed: int | None = None) -> tuple[Path, Job | None]:
    """Where a fine-tune goes, and the `factbench train` job that makes it (None: finished, reused)."""
    seed = world.seeds[0] if seed is None else seed
    target = model_dir(world, variant, seed, out)
    name = variant.name if len(world.seeds) == 1 else f"{variant.name} (seed {seed})"
    if (read_dict(target / "recipe_card.json") or {}).get("recipe") == variant.recipe:
        echo(f"  {name}: reusing {target}")
        return target, None
    if target.exists():
        echo(f"  {name}: {target} is not a finished fine-tune (interrupted?): training it again")
        shutil.rmtree(target)
    # The world's seed list decides the training seed (data order, initialisation of anything new).
    seeded = (f"seed={seed}",) if len(world.seeds) > 1 or seed != 0 else ()
    # A world's two-stage fine-tunes of one seed all begin with the same stage-1 teacher: the first keeps
    # it in OUT/teachers and the others load it (recipes/shared_teacher.py; the same results, less time).
    shared = (f"teacher_dir={out / 'teachers'}",) if variant.recipe in STAGES and sum(
        v.recipe in STAGES for v in VARIANTS if v.name in world.variants) > 1 else ()
    overrides = (f"model={world.model}", f"split_dir={split_dir}", *world.overrides, *variant.overrides, *seeded,
                 *shared, f"output_dir={target}", "overwrite=true")
    return target, Job(name, variant.recipe, world.config, overrides)


# Training stages per recipe: self-distillation and the L2 anchor (its stage-1 teacher) train twice.
STAGES = {"selfdistill": 2, "l2anchor": 2}


def _answer_job(spec: str, role: str, split_dir: str, where: str) -> None:
    """One model's answers, in a child process of answer_side_by_side."""
    answers(spec, role, splits.load_split(Path(split_dir)), Path(where), progress=False)  # bars side by side: unreadable


def answer_side_by_side(todo: list[tuple[str, str, Path]], split_dir: Path, count: int, threads: int,
                        echo=print) -> None:
    """Models' answers to the split's sets, `count` child processes at a time; each is kept where `answers` reads it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = [t for t in todo if not t[2].is_dir()]  # kept answers are read (or, if damaged, made again) by `answers`
    if len(todo) < 2:
        return
    count = min(count, len(todo))
    echo(f"  answering with {len(todo)} models, {count} at a time x {threads} CPU thread(s) each")
    # The children read their thread count when they start (spawned: nothing inherited but the environment).
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(_answer_job, spec, role, str(split_dir), str(where)) for spec, role, where in todo]:
                done.result()
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def job_count(jobs: int | None, pending: int) -> tuple[int, int]:
    """(fine-tunes at a time, CPU threads each): `jobs`, or on a CPU as many as there are free threads."""
    from . import threads

    total = threads.chosen().threads
    if jobs is None:
        import torch

        jobs = 1 if torch.cuda.is_available() else total  # one GPU: one fine-tune at a time
    count = max(1, min(jobs, pending))
    return count, max(1, total // count)


def answers(spec: str, role: str, split, where: Path, progress: bool = True) -> answer_sources.Answers:
    """The model's answers to the split's sets, kept in `where` (written aside, then moved in: complete or absent).

    Answers kept by an earlier run that no longer read (a damaged file) are asked again.
    """
    shutil.rmtree(where.with_name(where.name + ".partial"), ignore_errors=True)  # an earlier version's
    if where.is_dir():
        try:
            return answer_sources.read_answers(where, role)
        except FactbenchError:
            pass  # made again below; the damaged folder is replaced only once the new one is complete
    with _written(where) as tmp:
        answer_sources.answer_with_model(spec, role, split, save_to=tmp, echo=lambda *a: None, progress=progress)
    return answer_sources.read_answers(where, role)


def score(name: str, model_dir: Path, base: answer_sources.Answers, split, out: Path, echo=print) -> dict:
    card_path = out / "cards" / f"{name}.json"
    card = read_dict(card_path)
    # A card that does not read, or one from before cards had checksums (the leaderboard needs them), is made
    # again from the kept answers.
    if card is not None and isinstance(card.get("summary"), dict) and card.get("checksum"):
        echo(f"  {name}: reusing {card_path}")
        return card
    tuned = answers(str(model_dir), "tuned", split, out / "answers" / name)
    card = scorecard.score(base, tuned, split, training_log=model_dir / "training_log.jsonl")
    scorecard.write_card(card, card_path)
    s = card["summary"]
    echo(f"  {name}: retention {s['retention']['value']:.3f}, acquisition {s['acquisition']['value']:.3f}")
    return card


def publish(cards: dict[str, dict], out: Path) -> list[Path]:
    """A leaderboard of the demo's cards, rebuilt from scratch each run (cards are cheap to re-add).

    Built beside OUT/leaderboard and moved in whole: a failed build leaves the earlier one as it was.
    """
    folder = out / "leaderboard"
    with _written(folder) as tmp:
        for name in cards:
            leaderboard.add(out / "cards" / f"{name}.json", tmp)
        written = leaderboard.build(tmp)
    return [folder / p.relative_to(tmp) for p in written]


def run(world: str = "smollm2", out: Path = Path("runs/demo"), fresh: bool = False, echo=print,
        settings: list[str] | tuple[str, ...] = (), only: list[str] | tuple[str, ...] | None = None,
        seeds: list[int] | tuple[int, ...] | None = None, jobs: int | None = None) -> dict:
    """The whole loop; `settings` (KEY=VALUE training settings) apply to every fine-tune.

    `jobs`: fine-tunes trained at once, each a `factbench train` process with its share of the CPU
    threads (fine_tune_jobs); None: as many as there are free threads on a CPU, one on a GPU.

    `only` (fine-tune names) and `seeds` pick what this call trains among the world's; they are not
    settings, so a later call into the same OUT can train the rest, and the report covers every
    finished fine-tune.
    """
    if world not in WORLDS:
        raise FactbenchError(f"unknown world {world!r}; choose one of {', '.join(WORLDS)}")
    w, out = WORLDS[world], Path(out)
    if settings:
        from .recipes import load_config

        load_config({"output_dir": "x"}, list(settings))  # a bad setting fails here, before anything runs
        w = replace(w, overrides=(*w.overrides, *settings))
    unknown = sorted(set(only or ()) - set(w.variants))
    if unknown:
        raise FactbenchError(f"unknown fine-tune(s) {', '.join(unknown)} for world {world!r}; choose from "
                             f"{', '.join(w.variants)}")
    other_seeds = sorted(set(seeds or ()) - set(w.seeds))
    if other_seeds:
        raise FactbenchError(f"seed(s) {', '.join(map(str, other_seeds))} are not the world's; choose from "
                             f"{', '.join(map(str, w.seeds))}")
    variants = tuple(v for v in VARIANTS if v.name in w.variants)
    chosen = tuple(v for v in variants if not only or v.name in only)
    record = settings_record(w, variants)
    check_out(out, record, fresh)
    created = not out.exists()
    make_dirs(out)
    try:
        with output_lock(out, "--out"):
            return _run(world, w, variants, chosen, tuple(seeds or w.seeds), record, out, fresh, echo, jobs)
    except BaseException:
        if created and {p.name for p in _contents(out)} <= {"demo.json"}:
            shutil.rmtree(out, ignore_errors=True)  # nothing done yet: leave no empty folder behind
        raise


def _run(world: str, w: World, variants: tuple[Variant, ...], chosen: tuple[Variant, ...], seeds: tuple[int, ...],
         record: dict, out: Path, fresh: bool, echo, jobs: int | None = None) -> dict:
    if fresh:
        check_out(out, record, fresh)  # again, under the lock: still a demo run (or empty)
        for p in _contents(out):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    write_json(out / "demo.json", {"settings": record})
    started, times = time.perf_counter(), {}
    stages = 5 if w.score_cards else 3

    def stage(name: str, title: str):
        times[name] = time.perf_counter()
        echo(f"\n[{len(times)}/{stages}] {title}")

    stage("split", "split: Known / Unknown training facts and held-out Known facts")
    split_dir = make_split(w, out, echo)
    split = splits.load_split(split_dir)
    echo("  " + ", ".join(f"{k}: {v}" for k, v in split_counts(split).items()))

    runs = len(chosen) * len(seeds)
    stage("train", f"train {runs} fine-tune{'s' * (runs != 1)} of {w.model} ({w.config} config + {world} settings)")
    model_dirs, pending = {}, []
    for seed in seeds:
        for v in chosen:
            model_dirs[(v.name, seed)], job = plan(w, v, split_dir, out, echo, seed=seed)
            if job is not None:
                pending.append((v, job))
    count, per_job = job_count(jobs, max(len(pending), len(model_dirs) + 1 if w.score_cards else 0))
    pending.sort(key=lambda p: -STAGES.get(p[1].recipe, 1))  # the longest first: the last to finish is a short one
    from . import recipes

    for v, job in pending:
        echo(f"  {job.name}: {v.what}")
        if count == 1:  # one at a time, in this process: each one's line comes just before its training
            recipes.train(job.recipe, job.config, list(job.overrides))
    if count > 1:
        fine_tune_jobs.run([job for _, job in pending], count, per_job, out / "logs", echo)
    written = []
    cards = {}
    if w.score_cards:
        stage("score", "score each fine-tune against the base on the held-out, new and known-train questions")
        if count > 1:  # the models' answers side by side, as the fine-tunes were trained
            answer_side_by_side([(w.model, "base", out / "answers" / "base")] +
                                [(str(d), "tuned", out / "answers" / name) for (name, _), d in model_dirs.items()
                                 if read_dict(out / "cards" / f"{name}.json") is None],
                                split_dir, count, per_job, echo)
        base = answers(w.model, "base", split, out / "answers" / "base")
        cards = {name: score(name, d, base, split, out, echo) for (name, _), d in model_dirs.items()}

        stage("leaderboard", "leaderboard: tables, CSV, plots and the web page")
        written = publish(cards, out)
        echo(f"  {out / 'leaderboard' / 'index.html'} (and README.md, leaderboard.csv, plots/)")

    stage("report", "comparison" + (" and " if w.score_cards else ": ") + "the retention-acquisition frontier")
    from . import demo_report, frontier

    text = ""
    if cards:
        text = demo_report.table(cards)
        versus = demo_report.versus(cards)
        if versus:
            text += "\n\nAgainst plain SFT, paired by question:\n\n" + "\n".join(versus)
        curves = demo_report.curves_png(cards, out / "curves.png")
        written.append(curves)
    finished = [v for v in variants if all(read_dict(model_dir(w, v, s, out) / "recipe_card.json") for s in seeds)]
    if finished:
        names = [v.name for v in finished]
        # sft is the reference when it was trained (--only may leave it out)
        summary_frontier = frontier.analyse(out, reference="sft" if "sft" in names else names[0])
        written.extend(frontier.write(out, summary_frontier).values())
        text += ("\n\n" if text else "") + (out / "frontier" / "frontier.md").read_text(encoding="utf-8")
    write_text(out / "results.md", text + "\n")
    echo(text)
    times["end"] = time.perf_counter()
    names = list(times)
    seconds = {n: round(times[b] - times[n], 1) for n, b in zip(names, names[1:], strict=False)}
    summary = {"world": world, "out": str(out), "wall_seconds": round(time.perf_counter() - started, 1),
               "stage_seconds": seconds, "results": demo_report.rows(cards) if cards else [],
               "trained": [f"{name} seed {seed}" for (name, seed) in model_dirs],
               "files": [str(p) for p in [*written, out / "results.md"]]}
    write_json(out / "summary.json", summary)
    echo(f"\ndone in {summary['wall_seconds'] / 60:.1f} min; table in {out / 'results.md'}, "
         f"frontier in {out / 'frontier'}/" + (f", leaderboard in {out / 'leaderboard'}/" if cards else ""))
    return summary


def split_counts(split) -> dict:
    kinds = [r["kind"] for r in split.sets["train"]]
    return {"Known training facts": kinds.count("known"), "Unknown (new) training facts": kinds.count("unknown"),
            "held-out Known facts": len(split.sets["heldout"])}
