"""A recipe's settings: one dataclass, read from YAML, with `key=value` overrides.

`RecipeConfig` extends transformers' `TrainingArguments` (as TRL's trainer configs do), so every
Trainer setting (batch size, schedule, bf16, gradient checkpointing, `fsdp`, `deepspeed`, ...)
is a key of the same YAML file and works as it does anywhere else in the HF stack.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
import yaml
from transformers import TrainingArguments

from ..errors import FactbenchError
from . import parameters

LOSS_ON = ("answer", "all")
ANSWER_ENDS = ("eos", "newline")
TEACHERS = ("stage1", "base")
STUDENT_INITS = ("teacher", "base")
TEACHER_CACHES = ("none", "topk")
L2_ANCHORS = ("base", "stage1")
EVAL_SETS = ("heldout", "new", "known_train", "ood")
EVAL_PROTOCOLS = ("4-shot", "0-shot")  # how a fine-tune is asked during training (callbacks.PROTOCOLS)


@dataclass
class RecipeConfig(TrainingArguments):
    """Settings of `factbench train` (the recipe itself is chosen on the command line).

    Every `TrainingArguments` field is accepted too; only the defaults below differ from
    transformers' (learning_rate 5e-5 is METHOD.md's and transformers' default alike).

    Model and data:
        model: the base model, any spec `factbench.models.load` takes (`smollm2-135m`, `toy[:PRESET]`,
            a folder, a hub id).
        revision: hub revision of the model.
        split_dir: the split folder (`factbench split`) whose `train.jsonl` is the training data and
            whose held-out / new / known-train sets are evaluated each epoch; `bundled` (or unset) is
            the bundled SmolLM2-135M split; `toy[:PRESET]` a split derived from that toy world.
        loss_on: `answer` (default) puts the loss on the answer tokens and the final eos only;
            `all` on every token of `Q: ...\\nA: ...` + eos. **[ours]**
        answer_end: what follows each answer: `eos` (default; the fine-tuned model learns to stop)
            or `newline`, as in few-shot prompts and in a base model's own documents (the toy
            world never saw eos after an answer, and learning it costs it held-out accuracy). **[ours]**
        max_length: longest training example in tokens; a longer one is an error, never truncated.
        packing: join consecutive examples into sequences of up to max_length tokens (default
            false: one example per sequence, as published). Each keeps its own answer loss; most
            facts then follow other facts, as in a few-shot prompt, which matters for models with
            absolute position embeddings such as the toy world's. **[ours]**

    Which parameters train (every recipe; see recipes/parameters.py):
        trainable: a preset (`attention`, `ffn`, `all`) or a list of parameter-name patterns.
            Unset: `attention` for the freeze recipe, `all` for the others.

    Self-distillation (recipe `selfdistill`; METHOD.md §4.3):
        distill_lambda: λ, weight of the KL term (default 1; must be >= 0).
        distill_tau: τ, softmax temperature of teacher and student in the KL (default 0.5; > 0).
        teacher: `stage1` (default): 1 epoch of SFT on the Known training facts, frozen; `base`: the
            base model itself (no stage 1). **[ours]** option
        teacher_epochs: length of stage 1 in epochs (default 1).
        student_init: the stage-2 student starts from the `teacher` (default: it drifts away from
            the teacher, which the KL term restrains) or from the `base` model. **[ours]**
        kl_on: `answer` (default) or `all` non-padded tokens. **[ours]** option
        teacher_cache: `none` (default) keeps the teacher in memory and runs it every step;
            `topk` runs it once over the training data and keeps its top-k log-probabilities
            (the approximation is described in recipes/losses.py).
        teacher_topk: k of the cache (default 64).
        teacher_dir: a folder where stage 1's teacher is kept, and loaded by a later run whose stage 1
            would be the same (same weights, Known facts, settings, versions, device, threads; the
            stage-2 settings may differ): a sweep over λ, τ, kl_on or student_init trains one teacher,
            and so does the L2 anchor's `l2_anchor: stage1` (recipes/shared_teacher.py). Default unset:
            every run trains its own. One process per run only (refused under torchrun / accelerate).

    L2 anchor (recipe `l2anchor`):
        l2_lambda: λ of λ·||θ − θ_a||², summed over the trainable parameters (default 1e-3; >= 0) **[ours]**,
            or `matched`: the paper's gradient-matched λ_t = G_kl / (2·||θ − θ_a||), where G_kl is the
            gradient norm of the distillation term self-distillation would add on the same batch
            (λ = distill_lambda, τ = distill_tau, positions per kl_on, teacher = the anchor;
            top-k per teacher_cache), taken every l2_match_every steps (recipes/l2anchor.py).
        l2_anchor: θ_a: `base` (default: the starting weights) or `stage1`: self-distillation's
            stage 1 first (teacher_epochs of SFT on the Known facts), then Known + Unknown from those
            weights with the pull to them: the same anchor as self-distillation's teacher.
        l2_match_every: with `l2_lambda: matched`, re-match λ_t every N optimizer steps (default 1).

    Evaluation along training (rows in `training_log.jsonl`, every question's outcome in
    `eval_outcomes.jsonl`, the questions in `eval_questions.json`; see recipes/callbacks.py):
        eval_each_epoch: greedy accuracy on `eval_sets` after every epoch (default true).
        eval_before_training: also before the first step, logged as epoch 0 (default true).
        eval_every_steps: also every N optimizer steps within epochs (default unset: epoch ends
            only); the points of a retention-acquisition frontier.
        eval_sets: which of heldout, new, known_train, ood (default the first three).
        eval_protocols: how the model is asked: `4-shot` (the base model's 4-shot prompt, the
            audit's protocol) and/or `0-shot` (`Q: {question}\nA:`, the training format, as
            Gekhman et al. ask fine-tunes) (default [4-shot]). Each has its own protocol hash.
        eval_guessable: also ask the held-out (and OOD) facts a guess could answer (default true);
            false asks only the recalled ones, where retention is measured (the frontier's).
        eval_limit: the first N questions of each set only (default all).
        eval_batch_size: batch size of the evaluation engine.
        eval_reuse_base_answers: the untrained base model's answers before the first step are kept
            in the factbench cache and reused by every later fine-tune of the same weights asked the
            same prompts the same way (default true; recipes/base_answers.py says what must match).

    Every numeric setting is checked against the range where it means something (epochs > 0 or
    max_steps >= 1, learning_rate > 0, batch sizes and accumulation steps >= 1, λ >= 0, τ > 0, ...),
    finite, before any model is loaded: one error line names the setting and its range.

    Output:
        overwrite: allow an output_dir that holds an earlier training run (default false); it is
            replaced only once the new run is complete. A folder that is not a training run is never
            replaced.
        save_model: write the final model + tokenizer into output_dir (default true).
    """

    # ---- model and data ----
    model: str = "smollm2-135m"
    revision: str | None = None
    split_dir: str | None = None
    loss_on: str = "answer"
    answer_end: str = "eos"
    max_length: int = 256
    packing: bool = False
    # ---- trainable parameters ----
    trainable: str | list[str] | None = None
    # ---- self-distillation ----
    distill_lambda: float = 1.0
    distill_tau: float = 0.5
    teacher: str = "stage1"
    teacher_epochs: float = 1.0
    student_init: str = "teacher"
    kl_on: str = "answer"
    teacher_cache: str = "none"
    teacher_topk: int = 64
    teacher_dir: str | None = None
    # ---- L2 anchor ----
    l2_lambda: float | str = 1e-3  # a number, or "matched"
    l2_anchor: str = "base"
    l2_match_every: int = 1
    # ---- evaluation ----
    eval_each_epoch: bool = True
    eval_before_training: bool = True
    eval_every_steps: int | None = None
    eval_sets: list[str] = field(default_factory=lambda: ["heldout", "new", "known_train"])
    eval_protocols: list[str] = field(default_factory=lambda: ["4-shot"])
    eval_guessable: bool = True
    eval_limit: int | None = None
    eval_batch_size: int = 32
    eval_reuse_base_answers: bool = True
    # ---- output ----
    overwrite: bool = False
    save_model: bool = True

    # ---- TrainingArguments defaults that differ ----
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 16
    logging_steps: float = 10
    save_strategy: str = "no"  # the final model is saved by the recipe; checkpoints are opt-in
    report_to: None | str | list[str] = "none"
    remove_unused_columns: bool = False  # the collator needs every field it made
    dataloader_pin_memory: bool = field(default_factory=torch.cuda.is_available)  # pinning needs a GPU

    def __post_init__(self):
        # Our checks first: they explain themselves better than TrainingArguments' would.
        if not self.output_dir:
            raise FactbenchError("output_dir is required (where the model, training_log.jsonl and recipe_card.json go)")
        _choice("loss_on", self.loss_on, LOSS_ON)
        _choice("answer_end", self.answer_end, ANSWER_ENDS)
        _choice("teacher", self.teacher, TEACHERS)
        _choice("student_init", self.student_init, STUDENT_INITS)
        _choice("kl_on", self.kl_on, LOSS_ON)
        _choice("teacher_cache", self.teacher_cache, TEACHER_CACHES)
        _choice("l2_anchor", self.l2_anchor, L2_ANCHORS)
        self.check_ranges()
        if self.teacher_dir and world_size() > 1:
            raise FactbenchError(f"teacher_dir works with one training process per run; under torchrun / accelerate "
                                 f"(WORLD_SIZE={world_size()}) leave it unset and each run trains its own teacher")
        if self.teacher == "base" and self.student_init != "base":
            self.student_init = "base"  # without stage 1 there is no other teacher to start from
        if isinstance(self.eval_sets, str):
            self.eval_sets = [self.eval_sets]
        if not isinstance(self.eval_sets, (list, tuple)):
            raise FactbenchError(f"eval_sets must be a list of {', '.join(EVAL_SETS)}, got {self.eval_sets!r}")
        self.eval_sets = list(self.eval_sets)
        for s in self.eval_sets:
            _choice("eval_sets entry", s, EVAL_SETS)
        if isinstance(self.eval_protocols, str):
            self.eval_protocols = [self.eval_protocols]
        if not isinstance(self.eval_protocols, (list, tuple)) or not self.eval_protocols:
            raise FactbenchError(f"eval_protocols must be a non-empty list of {', '.join(EVAL_PROTOCOLS)}, "
                                 f"got {self.eval_protocols!r}")
        self.eval_protocols = [str(p) for p in self.eval_protocols]
        for p in self.eval_protocols:
            _choice("eval_protocols entry", p, EVAL_PROTOCOLS)
        if len(set(self.eval_protocols)) != len(self.eval_protocols):
            raise FactbenchError(f"eval_protocols lists a protocol twice: {self.eval_protocols!r}")
        if self.trainable is not None and not isinstance(self.trainable, str):
            if not isinstance(self.trainable, (list, tuple)):
                raise FactbenchError(f"trainable must be a preset ({', '.join(parameters.PRESETS)}) or a list of "
                                     f"parameter-name patterns, got {self.trainable!r}")
            self.trainable = list(self.trainable)
        parameters.resolve(self.trainable)  # a preset that exists, patterns that parse (matching needs the model)
        self.distributed_defaults()
        try:
            super().__post_init__()
        except (ValueError, TypeError) as e:
            raise FactbenchError(f"invalid training setting: {str(e).strip().splitlines()[0]}") from None
        except ImportError as e:  # `deepspeed: {...}` without deepspeed installed, say
            raise FactbenchError(f"a training setting needs a package that is not installed: "
                                 f"{str(e).strip().splitlines()[0]}") from None

    def check_ranges(self) -> None:
        """Every numeric setting inside the range where it means something, before any work is done.

        A setting outside it (0 epochs, a negative or NaN learning rate, a batch of 0) would either
        train nothing and still write a "fine-tune", or fail minutes later inside the Trainer.
        """
        for name in ("learning_rate", "distill_tau", "teacher_epochs"):
            _in_range(self, name, lambda v: v > 0, "a number > 0")
        for name in ("distill_lambda", "weight_decay", "warmup_steps", "max_grad_norm", "adam_epsilon"):
            _in_range(self, name, lambda v: v >= 0, "a number >= 0")
        self.check_l2()
        for name in ("adam_beta1", "adam_beta2", "label_smoothing_factor"):
            _in_range(self, name, lambda v: 0 <= v < 1, "a number in [0, 1)")
        _in_range(self, "logging_steps", lambda v: v > 0, "a number > 0 (steps, or a fraction of the run below 1)")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                     "eval_batch_size", "teacher_topk", "max_length"):
            _in_range(self, name, lambda v: v >= 1, "a whole number >= 1", whole=True)
        _in_range(self, "dataloader_num_workers", lambda v: v >= 0, "a whole number >= 0", whole=True)
        if self.eval_every_steps is not None:
            _in_range(self, "eval_every_steps", lambda v: v >= 1, "a whole number >= 1 (or unset: epoch ends only)",
                      whole=True)
        if self.eval_limit is not None:
            _in_range(self, "eval_limit", lambda v: v >= 1, "a whole number >= 1 (or unset: every question)",
                      whole=True)
        _in_range(self, "max_steps", lambda v: v == -1 or v >= 1,
                  "-1 (train for num_train_epochs) or a whole number >= 1", whole=True)
        if self.max_steps == -1:
            _in_range(self, "num_train_epochs", lambda v: v > 0, "a number > 0 (or set max_steps >= 1)")

    def check_l2(self) -> None:
        """l2_lambda a number >= 0 or `matched`; l2_match_every >= 1; `matched` only where it can be matched.

        `matched` needs a distillation term to match (distill_lambda > 0: with 0, λ_t would be 0 at
        every step, plain SFT under another name) and whole parameters on each process to take the
        two gradient norms (not fsdp, not DeepSpeed ZeRO-3), and torch.autograd.grad through the
        model (not reentrant gradient checkpointing, which refuses it; transformers' default is
        non-reentrant). `matched` with `l2_anchor: base` is allowed: anchor and teacher are both
        the base model. The self-distillation settings `teacher` and `student_init` are not read by
        the L2 recipe: its anchor (and the teacher of the match) is `l2_anchor`.
        """
        if isinstance(self.l2_lambda, str) and self.l2_lambda.strip().lower() == "matched":
            self.l2_lambda = "matched"
        elif isinstance(self.l2_lambda, str):  # YAML reads 1e-3 as a string
            try:
                self.l2_lambda = float(self.l2_lambda)
            except ValueError:
                raise FactbenchError(f"l2_lambda must be a finite number >= 0 or 'matched', got {self.l2_lambda!r}"
                                     ) from None
        if self.l2_lambda != "matched":
            _in_range(self, "l2_lambda", lambda v: v >= 0, "a number >= 0")
        _in_range(self, "l2_match_every", lambda v: v >= 1, "a whole number >= 1", whole=True)
        if self.l2_lambda != "matched":
            return
        if self.distill_lambda == 0:
            raise FactbenchError("l2_lambda=matched matches the distillation term's gradient, which distill_lambda=0 "
                                 "makes 0 (λ_t = 0: plain SFT); set distill_lambda > 0 or a numeric l2_lambda")
        sharded = "fsdp" if self.fsdp else ("DeepSpeed ZeRO-3" if _zero_stage(self.deepspeed) == 3 else None)
        if sharded:
            raise FactbenchError(f"l2_lambda=matched needs whole parameters on each process, not {sharded}: use "
                                 "DDP / ZeRO-2 or one process, or a numeric l2_lambda")
        if self.gradient_checkpointing and (self.gradient_checkpointing_kwargs or {}).get("use_reentrant"):
            raise FactbenchError("l2_lambda=matched takes torch.autograd.grad, which reentrant gradient checkpointing "
                                 "refuses: set gradient_checkpointing_kwargs={use_reentrant: false}")

    def distributed_defaults(self) -> None:
        """Under torchrun / accelerate (WORLD_SIZE > 1), settings that make it real DDP, unless set.

        Without a GPU (or other accelerator) transformers would otherwise leave every process training
        alone on all the data ("process group is initialized, but parallel_mode != DISTRIBUTED"): so
        `use_cpu: true` and `ddp_backend: gloo` there. On GPUs the HF defaults stay (NCCL). Every
        parameter of these models takes part in each forward pass, so `ddp_find_unused_parameters`
        is false unless set (DDP's search for unused ones costs a graph walk per step).
        """
        if world_size() <= 1:
            return
        if not _has_accelerator():
            self.use_cpu = True
            if self.ddp_backend is None:
                self.ddp_backend = "gloo"
        if self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = False

    def to_dict(self) -> dict:
        """Every setting, JSON-ready (the recipe card records it in full)."""
        d = super().to_dict()
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def world_size() -> int:
    """The number of training processes torchrun / accelerate started (WORLD_SIZE; 1 without them)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        return 1


def _has_accelerator() -> bool:
    if torch.cuda.is_available():
        return True
    current = getattr(getattr(torch, "accelerator", None), "current_accelerator", None)
    try:
        return current is not None and current() is not None
    except RuntimeError:
        return False


def _in_range(config, name: str, ok, allowed: str, whole: bool = False) -> None:
    """Refuse `config.name` unless it is a finite number (a whole one if `whole`) for which `ok` holds."""
    value = getattr(config, name)
    number = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not number or not math.isfinite(value) or not ok(value):
        raise FactbenchError(f"{name} must be {allowed if whole else 'a finite ' + allowed.removeprefix('a ')}, "
                             f"got {value!r}")


def _zero_stage(deepspeed) -> int | None:
    """The ZeRO stage of a `deepspeed` setting (a dict or a JSON file), None when unset or unreadable."""
    if isinstance(deepspeed, (str, Path)) and Path(deepspeed).is_file():
        try:
            import json

            deepspeed = json.loads(Path(deepspeed).read_text())
        except (OSError, ValueError):
            return None
    zero = deepspeed.get("zero_optimization") if isinstance(deepspeed, dict) else None
    stage = zero.get("stage") if isinstance(zero, dict) else None
    return stage if isinstance(stage, int) else None


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise FactbenchError(f"{name} must be one of {', '.join(options)}, got {value!r}")


# ---- reading configs ----------------------------------------------------------------------------

def bundled_configs() -> list[str]:
    return sorted(p.name for p in resources.files("factbench.recipes").joinpath("configs").iterdir()
                  if p.name.endswith(".yaml"))


def find_config(name: str | Path) -> Path:
    """A YAML path, or the name of a bundled config (`toy`, `toy.yaml`)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.exists():
        raise FactbenchError(f"config {name} is not a file")
    # (`llama3.1_8b` has a dot, not a suffix: a bundled name is found with .yaml added unless it ends so)
    bundled = resources.files("factbench.recipes").joinpath(
        "configs", path.name if path.name.endswith(".yaml") else f"{path.name}.yaml")
    if len(path.parts) == 1 and bundled.is_file():
        return Path(str(bundled))
    raise FactbenchError(f"config {name} does not exist (bundled configs: {', '.join(bundled_configs())})")


def load_config(source: str | Path | dict | RecipeConfig | None = None, overrides: list[str] | dict | None = None
                ) -> RecipeConfig:
    """A validated RecipeConfig from a YAML file (or a dict), with `key=value` overrides on top."""
    if isinstance(source, RecipeConfig) and not overrides:
        return source
    if isinstance(source, RecipeConfig):
        values = {f.name: getattr(source, f.name) for f in dataclasses.fields(RecipeConfig) if f.init}
    elif isinstance(source, dict) or source is None:
        values = dict(source or {})
    else:
        path = find_config(source)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise FactbenchError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(values, dict):
            raise FactbenchError(f"config {path} must be a mapping of setting: value")
    values.update(parse_overrides(overrides))
    return make_config(values)


def parse_overrides(overrides: list[str] | dict | None) -> dict:
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise FactbenchError(f"override {item!r} is not key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def make_config(values: dict) -> RecipeConfig:
    names = {f.name for f in dataclasses.fields(RecipeConfig) if f.init}
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise FactbenchError(f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    hints = _type_hints()
    return RecipeConfig(**{k: _coerce(k, v, hints.get(k)) for k, v in values.items()})


def _type_hints() -> dict:
    try:
        return typing.get_type_hints(RecipeConfig)
    except Exception:  # a transformers version whose annotations do not resolve: no coercion
        return {}


def _coerce(key: str, value, hint):
    """YAML reads `5e-5` as a string and `1` as an int: convert to the field's scalar type."""
    scalar = {int, float, bool, str}
    options = set(typing.get_args(hint)) if typing.get_args(hint) else {hint}
    if not isinstance(value, (str, int, float, bool)) or type(value) in options or not options & scalar:
        return value
    if isinstance(value, bool):  # true is not a learning rate of 1.0
        raise FactbenchError(f"setting {key}: {value!r} is not a valid {getattr(hint, '__name__', hint)}")
    for t in (bool, int, float):
        if t in options:
            try:
                if t is bool:
                    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                        return value.lower() in ("true", "yes", "1")
                    continue
                if t is int and isinstance(value, float) and not value.is_integer():
                    continue
                return t(value)
            except (TypeError, ValueError):
                continue
    if str in options and isinstance(value, (int, float)):
        return str(value)
    raise FactbenchError(f"setting {key}: {value!r} is not a valid {getattr(hint, '__name__', hint)}")
