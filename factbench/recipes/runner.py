"""`train(recipe, config)`: check everything, load the model, run one recipe, save and card it.

The recipes are the table `RECIPES` below: a name, the function that runs it (in its own file),
the parameters it trains unless `trainable` says otherwise, and one line on what it is.

All bad input (recipe, settings, split, training file, tokenizer, trainable patterns) fails with
one FactbenchError line before the first training step; settings and the output folder are checked
before the model is loaded.

The output folder appears whole or not at all: the run trains into a temporary folder beside
`output_dir` and renames it into place once the model, `training_log.jsonl` and `recipe_card.json`
are all written (`files.atomic_path`). A failure (a bad setting, a full disk, an interrupt) leaves
no partial folder and the earlier run in `output_dir`, if any, as it was; a write failure is one
WriteError line naming `output_dir`. Under torchrun / accelerate (WORLD_SIZE > 1) the main process
makes the temporary folder and sends its path to the others (a failure to make it is every rank's
error), every rank trains into it, only the main process writes there (model, log, card), and it
moves the folder into place once every rank is done; a run killed by a signal (torchrun stops the
other processes when one fails) can leave its hidden temporary folder `.NAME.*` beside `output_dir`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import models, recipe_cards
from ..errors import FactbenchError, WriteError
from ..files import atomic_path, make_dirs
from . import freeze, known_only, l2anchor, parameters, selfdistill, sft
from .config import RecipeConfig, load_config, world_size
from .examples import check_tokenizer, find_training_split, training_rows
from .trainer import RecipeOutput, Run


@dataclass(frozen=True)
class Recipe:
    name: str
    run: Callable[[Run], RecipeOutput]
    default_trainable: str  # the `trainable` preset when the setting is unset
    description: str


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("sft", sft.run, sft.DEFAULT_TRAINABLE,
           "all parameters, cross-entropy on the answers of Known + Unknown facts"),
    Recipe("freeze", freeze.run, freeze.DEFAULT_TRAINABLE,
           "SFT with a trainable preset (trainable=attention|ffn|all) or patterns"),
    Recipe("selfdistill", selfdistill.run, selfdistill.DEFAULT_TRAINABLE,
           "teacher = 1 epoch SFT on Known facts; student: CE + λτ²·KL to it"),
    Recipe("known-only", known_only.run, known_only.DEFAULT_TRAINABLE,
           "SFT on the Known facts only (the stability reference)"),
    Recipe("l2anchor", l2anchor.run, l2anchor.DEFAULT_TRAINABLE,
           "SFT + λ·||θ − θa||² (l2_lambda: a number or matched to the KL gradient; l2_anchor: base|stage1)"),
)}


@dataclass
class TrainResult:
    output_dir: Path
    card: dict
    log: list[dict]


def find_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise FactbenchError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def train(recipe: str, config: RecipeConfig | dict | str | Path, overrides: list[str] | dict | None = None
          ) -> TrainResult:
    """Run `recipe` with `config` (a RecipeConfig, a dict, or a YAML path / bundled config name)."""
    started = time.perf_counter()
    chosen = find_recipe(recipe)
    config = load_config(config, overrides)
    out_dir = Path(config.output_dir)
    check_output_dir(out_dir, config.overwrite)
    split = find_training_split(config.split_dir)
    training_rows(split)  # the whole file must be valid, whatever part a recipe uses
    if recipe == "known-only" or (recipe == "selfdistill" and config.teacher == "stage1") or (
            recipe == "l2anchor" and config.l2_anchor == "stage1"):
        training_rows(split, ("known",))
    with output_folder(out_dir) as work:
        loaded = models.load(config.model, config.revision)
        check_tokenizer(loaded.tokenizer)
        # The patterns must select parameters of this model: checked before any example is encoded.
        parameters.apply(loaded.model, config.trainable, default=chosen.default_trainable)
        run = Run(recipe, config, split, loaded.model, loaded.tokenizer, loaded.identity, work)
        output = chosen.run(run)
        trainer = output.trainer
        if config.save_model:
            trainer.save_model(str(work))  # model + tokenizer, gathered from FSDP/DeepSpeed shards if any
        result_card = recipe_cards.build(run, stages=output.stages, training_log=output.log,
                                         wall_seconds=time.perf_counter() - started, extra=output.extra)
        if trainer.is_world_process_zero():
            recipe_cards.write(result_card, work)  # last: a folder with a recipe card is a finished run
    return TrainResult(out_dir, result_card, output.log)


# ---- the output folder ------------------------------------------------------------------------------

def is_training_output(folder: Path) -> bool:
    """A folder an earlier `factbench train` wrote (finished, or interrupted by an older version)."""
    return (folder / recipe_cards.RECIPE_CARD).is_file() or (folder / "training_log.jsonl").is_file()


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output_dir that is a file, or holds files (other than an earlier run with overwrite)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FactbenchError(f"output_dir {out_dir} is a file; give a folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise FactbenchError(f"output_dir {out_dir} already holds files; choose another, or set overwrite=true")
    if not is_training_output(out_dir):
        raise FactbenchError(f"output_dir {out_dir} holds files that are not a training run (no "
                             f"{recipe_cards.RECIPE_CARD}); overwrite=true replaces only an earlier run: choose "
                             "another output_dir")


def _process_group():
    """torch.distributed when this is one of several training processes with a process group, else None."""
    if world_size() <= 1:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


@contextmanager
def output_folder(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside `out_dir` that replaces it when the block succeeds (see the module doc)."""
    dist = _process_group()
    if dist is None:
        if world_size() > 1:  # several processes but no process group to agree on a folder: write in place
            yield make_dirs(out_dir)
        else:
            with _atomic_output_folder(out_dir) as tmp:
                yield tmp
        return
    if dist.get_rank() != 0:
        box = [None]
        dist.broadcast_object_list(box, src=0)
        folder, error = box[0]
        if error is not None:
            raise FactbenchError(error)
        yield Path(folder)
        dist.barrier()  # training and saving done here; the main process moves the folder into place
        dist.barrier()  # ... and has moved it
        return
    sent = False
    try:
        with _atomic_output_folder(out_dir) as tmp:
            dist.broadcast_object_list([(str(tmp), None)], src=0)
            sent = True
            yield tmp
            dist.barrier()
    except Exception as e:
        if not sent:  # the folder could not be made: the other ranks wait for word of it
            dist.broadcast_object_list([(None, str(e) or type(e).__name__)], src=0)
        raise
    dist.barrier()


@contextmanager
def _atomic_output_folder(out_dir: Path) -> Iterator[Path]:
    missing = [p for p in (out_dir.parent, *out_dir.parent.parents) if not p.exists()]
    try:
        with atomic_path(out_dir) as tmp:
            try:
                tmp.mkdir()
                # Can anything be written there? Better to know now than after training.
                (tmp / ".write-check").write_bytes(b"\0" * 4096)
                (tmp / ".write-check").unlink()
                yield tmp
            except WriteError as e:  # a write inside the folder: name the folder the user gave
                raise WriteError(str(e).replace(str(tmp), str(out_dir))) from None
            except (OSError, FactbenchError):
                raise
            except Exception as e:
                cause = disk_error(e, tmp)
                if cause is None:
                    raise
                raise cause from None
    except BaseException:
        for folder in missing:  # the parents this run created, now empty again
            try:
                folder.rmdir()
            except OSError:
                break
        raise


_OS_ERROR = re.compile(r"os error (\d+)")


def disk_error(e: Exception, where: Path) -> OSError | None:
    """The OSError behind a save that failed for lack of space but did not say so as an OSError.

    safetensors reports a full disk as `SafetensorError(... (os error 28))` and torch.save as a
    RuntimeError about its stream writer; both become the OSError atomic_path turns into one line.
    """
    found = _OS_ERROR.search(str(e))
    if found and int(found.group(1)) in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
        code = int(found.group(1))
        return OSError(code, os.strerror(code), str(where))
    try:
        full = shutil.disk_usage(where).free < (1 << 20)
    except OSError:
        full = False
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where)) if full else None
