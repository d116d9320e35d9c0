#!/usr/bin/env bash
# Copy the small files of finished frontier-study runs (no weights) from one or more demo OUT folders
# into one results folder, and redraw the frontier there:
#   bash scripts/collect_frontier.sh results/frontier-smollm2 runs/frontier [runs/frontier-ko ...]
# Runs trained in parallel into separate OUTs (one demo writes into an OUT at a time) share one split
# (the same profile, settings and seed), which `factbench frontier` checks by checksum.
set -euo pipefail
dest=$1; shift
for out in "$@"; do
  mkdir -p "$dest/split"
  cp "$out/split/manifest.json" "$dest/split/"
  (cd "$out" && find models -name recipe_card.json -printf '%h\n') | while read -r run; do
    mkdir -p "$dest/$run"
    for f in recipe_card.json training_log.jsonl eval_outcomes.jsonl eval_questions.json; do
      cp "$out/$run/$f" "$dest/$run/"
    done
    if [ -d "$out/$run/stage1" ]; then
      mkdir -p "$dest/$run/stage1"
      cp "$out/$run/stage1/"*.json* "$dest/$run/stage1/" 2>/dev/null || true
    fi
  done
done
factbench frontier "$dest"
