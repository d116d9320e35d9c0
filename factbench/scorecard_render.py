"""The plain-text summary of a score card, as `factbench score` prints it.

Apart from `factbench.scorecard` so that module stays the card's data (assembly, schema, I/O);
the per-value formatting (`pct`, `points`) stays there, shared with compare and interference.
"""

from __future__ import annotations

from . import data
from .scorecard import pct, points

SET_TITLES = {"heldout": "held-out known facts (retention)", "new": "new facts trained on (acquisition)",
              "known_train": "known facts trained on (task learning)", "ood": "out-of-distribution known facts"}
# When factbench cannot show the fine-tune was trained on the split, its training sets are only the split's.
UNTRAINED_TITLES = SET_TITLES | {"new": "the split's Unknown training facts", "known_train": "the split's Known training facts"}


def titles(card: dict) -> dict:
    """Set titles that claim "trained on" only when the card's training_data shows it."""
    return SET_TITLES if (card.get("training_data") or {}).get("trained_on_split") else UNTRAINED_TITLES


def _flip_row(title: str, f: dict) -> str:
    counts = "".join(f"{f[k]['count']:>{w}}" for k, w in zip(("retained", "forgotten", "acquired", "never_known"),
                                                              (10, 11, 10, 13)))
    return f"  {title:<34}{f['questions']:>6}{counts}   {pct(f['forgotten']['share'])}"


def render(card: dict) -> str:
    """The plain-text summary printed by `factbench score`."""
    s, sets = card["summary"], card["sets"]
    out = [f"score card: {card['tuned']['label']}",
           f"  against base {card['base']['label']}",
           f"  split {card['split']['path']}  (question protocol {card['protocol_hash']}, task v{card['task_version']}, "
           f"factbench {card['factbench_version']})",
           f"  95% intervals: seeded bootstrap over questions ({card['statistics']['bootstrap_resamples']} resamples)",
           *([f"  training data: {card['training_data']['evidence']}"] if card.get("training_data") else []),
           "",
           f"  {'set':<40}{'questions':>9}   {'base':<24}{'tuned':<24}change (points)"]
    for name, title in titles(card).items():
        e = sets[name]
        if e["status"] != "scored":
            out.append(f"  {title:<40}{'':>9}   {e['status']}")
            continue
        out.append(f"  {title:<40}{e['questions']:>9}   {pct(e['base_accuracy']):<24}{pct(e['tuned_accuracy']):<24}"
                   f"{points(e['change'])}")
    held = sets["heldout"]
    base_right = held["flips"]["all"]["retained"]["count"] + held["flips"]["all"]["forgotten"]["count"]
    out += ["",
            f"  retention {pct(s['retention'])}, forgetting {pct(s['forgetting'])} of {held['questions']} held-out "
            "facts the base knew (absolute)",
            f"  the base itself answers {pct(s['base_heldout_accuracy'])} of them now; drop base - tuned "
            f"{points(s['heldout_drop'])} points",
            f"  of the {base_right} the base answered right, the tuned model keeps {pct(s['retained_of_base_right'])}"]
    ratio = s["forgotten_per_acquired"]
    if ratio:
        value = f"= {ratio['ratio']:.3f}" if ratio["ratio"] is not None else "(undefined: nothing acquired)"
        out.append(f"  forgotten ÷ acquired: {ratio['forgotten']} ÷ {ratio['acquired']} {value}; "
                   f"{ratio['forgotten']} of {ratio['heldout_questions']} held-out facts forgotten, "
                   f"{ratio['acquired']} of {ratio['new_questions']} new facts acquired"
                   + ("" if titles(card) is SET_TITLES else
                      " (training data unknown: acquired = right now after being wrong, not shown to be learned)"))
    else:
        out.append("  forgotten ÷ acquired: – (no answers on the new facts)")
    log = card["training_log"]
    if log and log["peak_relative_forgetting"] is not None:
        out.append(f"  peak-relative forgetting: {100 * log['peak_relative_forgetting']:.1f}% (held-out accuracy "
                   f"{log['peak']['heldout_accuracy']:.3f} at epoch {log['peak']['epoch']}, "
                   f"{log['final']['heldout_accuracy']:.3f} at epoch {log['final']['epoch']})")
    else:
        out.append("  peak-relative forgetting: – (" + ("peak held-out accuracy is 0)" if log else
                                                       "give the recipe's per-epoch log with --training-log)"))
    out += ["", f"  {'flips, base -> tuned':<34}{'n':>6}{'retained':>10}{'forgotten':>11}{'acquired':>10}"
                f"{'never known':>13}   forgotten share"]
    for name, title in titles(card).items():
        if sets[name]["status"] == "scored":
            out.append(_flip_row(title.split(" (")[0], sets[name]["flips"]["all"]))
    out.append("  held-out known facts by relation:")
    for relation, f in held["flips"]["by_relation"].items():
        out.append(_flip_row(f"  {relation} {data.relation_name(relation)}", f))
    out.append("  held-out known facts by SliCK category:")
    for category, f in held["flips"]["by_category"].items():
        out.append(_flip_row(f"  {category}", f))
    guess = card["guessable"]
    out += ["", f"  guessable facts: {guess['note']}"]
    for name, m in guess["sets"].items():
        out.append(f"    {titles(card)[name].split(' (')[0]}: {m['questions']} guessable, base {pct(m['base_accuracy'])}, "
                   f"tuned {pct(m['tuned_accuracy'])}")
    if card["notes"]:
        out += ["", "  notes:"] + [f"  - {n}" for n in card["notes"]]
    return "\n".join(out)
