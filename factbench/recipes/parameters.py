"""Which parameters train (the `trainable` setting of every recipe): named presets and custom patterns.

Every recipe calls `apply` on its model before training; the `freeze` recipe (freeze.py) is plain
SFT with the `attention` preset as its default. Presets, for Llama / Qwen2 / Mistral and GPT-2 naming:

| preset      | trains                                                                 | frozen                          |
|-------------|------------------------------------------------------------------------|---------------------------------|
| `attention` | q/k/v/o projections: `self_attn.{q,k,v,o}_proj` (+ Qwen2's q/k/v bias), GPT-2 `attn.c_attn`, `attn.c_proj` | MLP, embeddings, LM head, norms |
| `ffn`       | the MLP: `mlp.{gate,up,down}_proj`, GPT-2 `mlp.c_fc`, `mlp.c_proj`      | attention, embeddings, LM head, norms |
| `all`       | everything                                                             | nothing                         |

A custom list of patterns trains every parameter whose name matches one of them. A pattern is
a glob matched against the whole name (`*.self_attn.q_proj.*`), or with a `re:` prefix a regular
expression searched in it (`re:layers\\.(0|1)\\.mlp\\.`). A pattern that matches no parameter is an
error: it is almost always a typo or another architecture's naming, and silently training
nothing would look like "attention-only training learns nothing".

**Tied weights.** GPT-2 and SmolLM2 use one tensor as input embedding and LM head
(`transformer.wte.weight` is `lm_head.weight`). Selecting one of those names but not the other is
an error, because the tensor would train under both roles; select both names, or neither.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict

from ..errors import FactbenchError

_ATTENTION = r"(^|\.)(self_attn|attn|attention)\.(q_proj|k_proj|v_proj|o_proj|c_attn|c_proj)\.(weight|bias)$"
_FFN = r"(^|\.)mlp\.(gate_proj|up_proj|down_proj|c_fc|c_proj)\.(weight|bias)$"

PRESETS: dict[str, tuple[str, ...]] = {
    "attention": (f"re:{_ATTENTION}",),
    "ffn": (f"re:{_FFN}",),
    "all": ("*",),
}


def resolve(trainable: str | list[str] | tuple[str, ...] | None, default: str = "all") -> tuple[str, ...]:
    """The patterns of a preset name, or a custom pattern list as is."""
    trainable = default if trainable is None else trainable
    if isinstance(trainable, str):
        if trainable not in PRESETS:
            raise FactbenchError(f"unknown trainable preset {trainable!r}; choose one of {', '.join(PRESETS)}, "
                                 "or give a list of parameter-name patterns")
        return PRESETS[trainable]
    patterns = tuple(trainable)
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise FactbenchError("trainable: a pattern list must hold one or more non-empty strings")
    for p in patterns:
        if p.startswith("re:"):
            try:
                re.compile(p[3:])
            except re.error as e:
                raise FactbenchError(f"trainable pattern {p!r} is not a valid regular expression: {e}") from None
    return patterns


def matches(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def apply(model, trainable: str | list[str] | tuple[str, ...] | None, default: str = "all") -> dict:
    """Set `requires_grad` on every parameter of `model`; return a summary for the recipe card."""
    patterns = resolve(trainable, default)
    # Every name of every tensor, tied aliases included (named_parameters() hides them by default).
    names_of: dict[int, list[str]] = defaultdict(list)
    tensors = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names_of[id(p)].append(name)
        tensors[id(p)] = p
    all_names = [n for names in names_of.values() for n in names]
    unmatched = [p for p in patterns if not any(matches(p, n) for n in all_names)]
    if unmatched:
        example = ", ".join(all_names[:3])
        raise FactbenchError(f"trainable pattern(s) {', '.join(map(repr, unmatched))} match no parameter of this "
                             f"{type(model).__name__} (names look like: {example}, ...)")
    trained, frozen = [], []
    for key, names in names_of.items():
        selected = [n for n in names if any(matches(p, n) for p in patterns)]
        if selected and len(selected) < len(names):
            other = [n for n in names if n not in selected]
            raise FactbenchError(f"{selected[0]} and {other[0]} are one tied tensor; the trainable patterns select "
                                 "only one of those names: select both, or neither")
        tensors[key].requires_grad_(bool(selected))
        (trained if selected else frozen).append(names[0])
    n_trained = sum(tensors[k].numel() for k, names in names_of.items() if names[0] in set(trained))
    n_total = sum(t.numel() for t in tensors.values())
    if not trained:
        raise FactbenchError("the trainable patterns leave no parameter to train")
    return {"trainable": trainable if trainable is not None else default, "patterns": list(patterns),
            "trainable_parameters": n_trained, "total_parameters": n_total,
            "trainable_share": round(n_trained / n_total, 6), "trainable_tensors": len(trained),
            "frozen_tensors": len(frozen)}
