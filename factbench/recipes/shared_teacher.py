"""Stage 1's teacher kept in a folder and loaded by the next fine-tune that would train the same one.

Self-distillation and its variants, and the L2 anchor with `l2_anchor: stage1`, all begin with the same
stage 1: `teacher_epochs` of plain SFT on the Known training facts, same settings and seed
(selfdistill.teacher_stage). With the setting `teacher_dir: PATH`, the first of them keeps its teacher
there (the weights, the evaluation point stage 2 starts from, stage 1's logs and its card entry) and
every later one whose stage 1 would be the same loads it instead of training it again: a sweep over λ,
τ, `kl_on` or `student_init` trains one teacher.

"The same stage 1" is a sha256 key over what it reads: the weights it starts from (as they are in
memory) and which of them train, the tokenizer, the Known training examples as encoded, every setting
except the ones only stage 2 reads (STAGE2_ONLY) and the ones that only say where output goes (PLACES),
the torch and transformers versions, the device and the CPU thread count. On a CPU, training is
deterministic for those, so the loaded teacher is the one this run would have trained (a test checks
that a run with a loaded teacher ends with the same weights and answers as one that trained it); on a
GPU it is another run of the same stage 1, not necessarily bit for bit.

A second process that wants a teacher while another trains it waits for it (a lock file per key) and
then loads it. An entry that does not load (damaged, partial) is trained again and replaced; one that
cannot be written is reported in one line and costs only the time. One process per run only: under
torchrun / accelerate the setting is refused (config.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

from ..errors import WriteError
from ..files import read_dict, write_json
from .base_answers import tokenizer_sha256, weights_sha256
from .callbacks import Point

SCHEMA = 1
WEIGHTS, POINT, ENTRY = "teacher.pt", "point.json", "entry.json"
LOGS = "stage1"  # stage 1's own training_log.jsonl, eval_outcomes.jsonl, eval_questions.json

# Settings stage 1 never reads: the stage-2 loss and start, and stage 2's length (stage 1 trains
# `teacher_epochs`). Every other setting is part of the key, so an unknown one can only cost a reuse.
STAGE2_ONLY = ("distill_lambda", "distill_tau", "student_init", "kl_on", "teacher_cache", "teacher_topk",
               "l2_lambda", "l2_anchor", "l2_match_every", "num_train_epochs")
PLACES = ("output_dir", "logging_dir", "run_name", "overwrite", "save_model", "teacher_dir", "report_to",
          "push_to_hub", "resume_from_checkpoint")


def key(run, known: list[dict]) -> str:
    """The sha256 naming the teacher `run` would train on `known` (call before stage 1 trains)."""
    settings = {k: v for k, v in run.config.to_dict().items()
                if k not in STAGE2_ONLY and k not in PLACES and not k.startswith("hub_")}
    parts = {
        "schema": SCHEMA,
        "weights": weights_sha256(run.model),
        "trainable": [n for n, p in run.model.named_parameters() if p.requires_grad],
        "tokenizer": tokenizer_sha256(run.tokenizer),
        "examples": hashlib.sha256(json.dumps(known, sort_keys=True).encode()).hexdigest(),
        "settings": settings,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "device": str(run.config.device), "threads": torch.get_num_threads(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def reuse_or_train(run, known: list[dict], train) -> tuple[object, Point | None, dict]:
    """(model, first point of stage 2, stage 1's card entry): loaded from `run.config.teacher_dir` when a
    teacher with this run's key is kept there, else `train()` (which returns the same triple), kept."""
    started = time.perf_counter()  # a loaded stage's seconds: the key (hashing the weights), any wait, the load
    folder = Path(run.config.teacher_dir)
    name = key(run, known)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / f".{name}.lock", "a")
    except OSError as e:
        print(f"factbench: teacher_dir {folder} cannot be used ({e.strerror or e}); training stage 1 here",
              file=sys.stderr)
        return train()
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another run is training this teacher: it holds the lock until it is kept
            print(f"factbench: another run is training this stage-1 teacher in {folder}; waiting for it",
                  file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        loaded = _load(run, folder / name)
        if loaded is not None:
            point, summary = loaded
            summary = summary | {"seconds": round(time.perf_counter() - started, 2),
                                 "reused": {"from": str(folder / name), "trained_seconds": summary["seconds"]}}
            return run.model, point, summary
        model, point, summary = train()
        _keep(run, folder, name, point, summary)
        return model, point, summary


def _load(run, entry: Path) -> tuple[Point | None, dict] | None:
    """Load the kept teacher into run.model and copy stage 1's logs into this run; None when there is none
    that loads whole (the model is untouched then)."""
    meta, kept = read_dict(entry / ENTRY), read_dict(entry / POINT)
    if not meta or meta.get("schema") != SCHEMA or not kept or "point" not in kept or not (entry / LOGS).is_dir():
        return None
    try:
        state = torch.load(entry / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any damage means: train it again
        return None
    # Checked before anything is copied: load_state_dict copies the tensors that fit before it complains
    # about the others, which would leave stage 1 to train from a half-loaded model.
    own = run.model.state_dict()
    if not isinstance(state, dict) or state.keys() != own.keys() or any(
            not isinstance(state[k], torch.Tensor) or state[k].shape != t.shape or state[k].dtype != t.dtype
            for k, t in own.items()):
        return None
    run.model.load_state_dict(state)
    logs = run.out_dir / LOGS
    shutil.copytree(entry / LOGS, logs, dirs_exist_ok=True)
    point = kept["point"]  # None when stage 1 was not evaluated (no evaluation points at all)
    return (None if point is None else Point(point["row"], point["outcomes"], point["base"])), meta["summary"]


def _keep(run, folder: Path, name: str, point: Point | None, summary: dict) -> None:
    """Write the entry whole into a temporary folder, then rename it into place."""
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
        torch.save(run.model.state_dict(), tmp / WEIGHTS)
        shutil.copytree(run.out_dir / LOGS, tmp / LOGS)
        write_json(tmp / POINT, {"point": None if point is None else
                                 {"row": point.row, "outcomes": point.outcomes, "base": point.base}})
        write_json(tmp / ENTRY, {"schema": SCHEMA, "summary": summary, "model": run.config.model,
                                 "kept_by": str(run.config.output_dir)})
        if (folder / name).exists():  # a damaged entry that did not load
            shutil.rmtree(folder / name)
        os.replace(tmp, folder / name)
    except (OSError, WriteError) as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"factbench: could not keep the teacher in {folder} ({getattr(e, 'strerror', None) or e}); this run is not "
              "affected, a later one will train its own", file=sys.stderr)
