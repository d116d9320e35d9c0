"""Known-only SFT (METHOD.md §4, baseline): plain SFT on the Known training facts alone.

    factbench train --recipe known-only --config toy.yaml output_dir=runs/toy-known-only

No new facts, so whatever held-out accuracy it loses is the cost of fine-tuning itself (format
learning, drift) rather than of learning new facts: the stability reference the other recipes'
forgetting is read against (the paper's "all, Known-only training data" row).

Path: sft.py's, with the Known training facts as its only examples.
"""

from __future__ import annotations

from . import sft

DEFAULT_TRAINABLE = "all"


def run(run):
    return sft.run(run, kinds=("known",), default_trainable=DEFAULT_TRAINABLE, name="known-only")
