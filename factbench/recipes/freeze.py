"""Freeze (METHOD.md §4, recipe 2): plain SFT with only some parameters training.

    factbench train --recipe freeze --config toy.yaml trainable=attention output_dir=runs/toy-attn

Read it as sft.py with one setting changed: the same data (Known + Unknown training facts), the
same cross-entropy on the answer tokens, the same shared training loop (trainer.py), the same
outputs; only `trainable` defaults to `attention` (the q/k/v/o projections) instead of `all`,
the paper's fix for when new facts are *not* wanted. The presets (`attention`, `ffn`, `all`) and
custom patterns are in parameters.py.
"""

from __future__ import annotations

from . import sft

DEFAULT_TRAINABLE = "attention"


def run(run):
    return sft.run(run, default_trainable=DEFAULT_TRAINABLE, name="freeze")
