"""The summary of an interference run: every number with n and a 95% interval, as JSON
(`interference.json`), Markdown (`interference.md`) and a plot (`interference.png`).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from .. import __version__, stats, synthetic
from ..scorecard import pct, points
from .experiment import RECIPE_LABELS, SCHEMA, Experiment, condition_name

# ---- numbers ------------------------------------------------------------------------------------

def condition_summary(result: dict, base: dict, new_answers: list[str] | None = None) -> dict:
    """Every number of one condition, each with n and a 95% interval (paired over the same facts).

    `new_answers`, the gold answers of the synthetic facts asked, adds the share of the most common
    one: what a model that learned no fact but always answers the majority country would score.
    """
    base_em = base["answers"]["heldout"]["em"]
    tuned_em = result["answers"]["heldout"]["em"]
    kind = result["keys"]
    learned = result["answers"].get(kind, {"ids": [], "em": []})
    base_new = base["answers"].get(kind, {"em": []})["em"][:len(learned["em"])]
    by_relation = {}
    relations = [fid.split("/")[0] for fid in base["answers"]["heldout"]["ids"]]
    for rel in sorted(set(relations), key=lambda r: int(r[1:])):
        idx = [i for i, r in enumerate(relations) if r == rel]
        by_relation[rel] = {"forgetting": stats.paired_difference_ci([base_em[i] for i in idx],
                                                                     [tuned_em[i] for i in idx]),
                            "drift": stats.rate_with_ci([result["drift"][i] for i in idx])}
    return {
        "recipe": result["recipe"], "keys": kind, "size": result["size"],
        "learned": stats.rate_with_ci(learned["em"]),
        "majority_answer": _majority(new_answers[:len(learned["em"])]) if new_answers else None,
        "base_on_new": stats.rate_with_ci(base_new),
        "heldout_accuracy": stats.rate_with_ci(tuned_em),
        # base − tuned accuracy on the same facts: positive = forgotten
        "forgetting": stats.paired_difference_ci(base_em, tuned_em),
        "forgotten_of_base_right": stats.rate_with_ci([not t for b, t in zip(base_em, tuned_em) if b]),
        # the bootstrap of a mean works for any values, not only 0/1 outcomes
        "drift": stats.rate_with_ci(result["drift"]),
        # the known facts of the synthetic facts' own relation, where interference should be strongest
        "same_relation": by_relation.get(result["identity"]["relation"]),
        "by_relation": by_relation,
        "training_seconds": result["training"]["seconds"],
    }


def summarize(exp: Experiment, out: Path, base: dict) -> dict:
    results = {}
    for c in exp.conditions():
        results[c] = json.loads((out / "runs" / condition_name(*c) / "result.json").read_text())
    rows = [condition_summary(r, base, _trained_answers(out, r["keys"], r["size"])) for r in results.values()]
    gaps = []
    if {"namelike", "uuid"} <= set(exp.keys):
        for recipe in exp.recipes:
            for size in sorted(set(exp.sizes)):
                name, uid = results[(recipe, "namelike", size)], results[(recipe, "uuid", size)]
                gaps.append({
                    "recipe": recipe, "size": size,
                    # forgetting(name-like) − forgetting(UUID) = UUID accuracy − name-like accuracy
                    "extra_forgetting": stats.paired_difference_ci(uid["answers"]["heldout"]["em"],
                                                                   name["answers"]["heldout"]["em"]),
                    "extra_drift": stats.paired_difference_ci(name["drift"], uid["drift"]),
                })
    ident = base["identity"]
    return {
        "schema": SCHEMA, "kind": "factbench interference", "factbench_version": __version__,
        "command": exp.command, "settings": asdict(exp) | {"config": exp.config_name}, "identity": ident,
        "layer": base["layer"],
        "base": {"model": exp.model, "known_facts": len(base["answers"]["heldout"]["em"]),
                 "accuracy": stats.rate_with_ci(base["answers"]["heldout"]["em"])},
        "uuid_spelling": _spelling(out, exp),
        "conditions": rows, "name_like_minus_uuid": gaps,
        "bootstrap": {"resamples": stats.DEFAULT_RESAMPLES, "seed": stats.DEFAULT_SEED, "level": 0.95},
    }


def _trained_answers(out: Path, kind: str, size: int) -> list[str] | None:
    try:
        text = (out / "facts" / f"{kind}-{size}" / "train.jsonl").read_text()
    except OSError:
        return None
    return [json.loads(line)["answer"] for line in text.splitlines()]


def _majority(answers: list[str]) -> dict | None:
    if not answers:
        return None
    answer, count = Counter(answers).most_common(1)[0]
    return {"answer": answer, "share": count / len(answers), "n": len(answers)}


def _spelling(out: Path, exp: Experiment) -> dict | None:
    for size in sorted(set(exp.sizes)):
        try:
            return json.loads((out / "facts" / f"uuid-{size}" / "manifest.json").read_text())["synthetic"][
                "uuid_spelling"]
        except (OSError, ValueError, KeyError):
            continue
    return None


def _num(rate: dict | None, digits: int = 4) -> str:
    if not rate or rate["value"] is None:
        return "–"
    return f"{rate['value']:.{digits}f} [{rate['low']:.{digits}f}, {rate['high']:.{digits}f}]"


def render(summary: dict) -> str:
    """The summary as Markdown: one table of conditions, one of name-like − UUID differences."""
    base = summary["base"]
    lines = [
        "# Interference: name-like vs UUID keys", "",
        f"Base model `{base['model']}`: {base['known_facts']} facts it knew, {pct(base['accuracy'])} answered "
        f"right before fine-tuning. Synthetic {summary['settings']['relation']} facts; drift at layer "
        f"{summary['layer']}. 95% bootstrap intervals; forgetting = base − fine-tuned accuracy on the known facts "
        "(percentage points, paired).", "",
    ]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    relation = summary["settings"]["relation"]
    same_n = next((r["same_relation"]["forgetting"]["n"] for r in summary["conditions"] if r["same_relation"]), 0)
    lines += [f"| recipe | keys | new facts | learned (majority answer) | known facts right | forgetting (pts) | "
              f"forgetting, {relation} facts (pts) | drift (1 − cos) |", "|---|---|---:|---|---|---|---|---|"]
    for r in summary["conditions"]:
        same = points(r["same_relation"]["forgetting"]) if r["same_relation"] else "–"
        majority = f"; {100 * r['majority_answer']['share']:.0f}%" if r.get("majority_answer") else ""
        lines.append(f"| {RECIPE_LABELS.get(r['recipe'], r['recipe'])} | {synthetic.KEY_KINDS[r['keys']]} | "
                     f"{r['size']} | {pct(r['learned'])} (n={r['learned']['n']}{majority}) | "
                     f"{pct(r['heldout_accuracy'])} | {points(r['forgetting'])} | {same} | {_num(r['drift'])} |")
    lines.append(f"\nn = {base['known_facts']} known facts per row ({same_n} of them {relation} facts). Learned: the "
                 "synthetic facts trained on, asked 4-shot like every question; the majority answer's share is what "
                 "always answering the most common answer would score.")
    if summary["name_like_minus_uuid"]:
        lines += ["", "## Name-like minus UUID (paired over the same known facts)", "",
                  "| recipe | new facts | extra forgetting (pts) | extra drift |", "|---|---:|---|---|"]
        for g in summary["name_like_minus_uuid"]:
            lines.append(f"| {RECIPE_LABELS.get(g['recipe'], g['recipe'])} | {g['size']} | "
                         f"{points(g['extra_forgetting'])} | {_num(g['extra_drift'])} |")
    return "\n".join(lines) + "\n"


def plot_png(summary: dict) -> bytes:
    """Forgetting and drift against the number of new facts: name-like vs UUID, one line style per recipe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(9.6, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    colors = {"namelike": "#d62728", "uuid": "#1f77b4"}
    styles = ["-", "--", ":", "-."]
    rows = summary["conditions"]
    sizes = sorted({r["size"] for r in rows})
    series_keys = [(recipe, kind) for recipe in dict.fromkeys(r["recipe"] for r in rows) for kind in colors]
    for ax, metric, label in ((axes[0], "forgetting", "forgetting (base − fine-tuned accuracy)"),
                              (axes[1], "drift", "drift of known subjects (1 − cos)")):
        for i, recipe in enumerate(dict.fromkeys(r["recipe"] for r in rows)):
            for kind in colors:
                series = sorted((r for r in rows if r["recipe"] == recipe and r["keys"] == kind), key=lambda r: r["size"])
                if not series:
                    continue
                # a small sideways shift per series, so that equal values do not hide each other
                shift = 1 + 0.025 * (series_keys.index((recipe, kind)) - (len(series_keys) - 1) / 2)
                xs = [r["size"] * shift for r in series]
                ys = [r[metric]["value"] for r in series]
                err = [[y - r[metric]["low"] for y, r in zip(ys, series)], [r[metric]["high"] - y for y, r in zip(ys, series)]]
                ax.errorbar(xs, ys, yerr=err, color=colors[kind], linestyle=styles[i % len(styles)], marker="o",
                            capsize=3, label=f"{synthetic.KEY_KINDS[kind]}, {RECIPE_LABELS.get(recipe, recipe)}")
        if len(sizes) > 1 and sizes[-1] / sizes[0] >= 10:
            ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("synthetic facts trained on")
        ax.set_ylabel(label)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary['base']['model']} · {summary['settings']['relation']} · layer {summary['layer']}",
                 fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
