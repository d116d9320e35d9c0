"""An audit card as text: the headline, then Markdown tables (per relation, flips, labels)."""

from __future__ import annotations

from ..data import relation_name
from ..scorecard import pct, points
from .base import NOT_SAMPLED


def headline(card: dict) -> list[str]:
    a, s = card["audit"], card["summary"]
    level = round(100 * card["statistics"]["level"])
    lines = [
        f"audit of {card['tuned']['label']} against {card['base']['label']}",
        f"questions: {a['questions']:,} EntityQuestions test questions of {a['relations']} relations (audit set "
        f"{a['version']} {a['preset']}); the base asked under {a['base_prompts']} prompts, the fine-tune under prompt 0; "
        f"{level}% bootstrap intervals over questions",
    ]
    t = card["training_data"]
    lines.append(f"training data: {t['note']}" if not t["known"] else
                 f"training data: {t['path']} ({t['examples']} examples, {t['format']} format)")
    lines.append(f"the base recalls {s['recalled_facts']} of them (right under all {a['base_prompts']} prompts and not "
                 f"guessable{'; ' + str(s['edited']) + ' edited facts left out' if s['edited'] else ''})")
    breaks = (f" ({s['forgotten_format_breaks']} of them format breaks: the answer was not answer-shaped)"
              if s["forgotten"] else "")
    lines += [
        f"retention of recalled facts: {pct(s['retention'])} (n={s['recalled_facts']}): "
        f"{s['forgotten']} forgotten{breaks}",
        f"forgetting: {pct(s['forgetting'])}; retention among answer-shaped answers: {pct(s['retention_of_answer_shaped'])}",
        f"of the {s['retained_of_base_right']['n']} facts the base answered right under prompt 0 (recalled or "
        f"guessed), the fine-tune keeps {pct(s['retained_of_base_right'])}",
        f"accuracy on every audit question, prompt 0: base {pct(s['base_accuracy'])}, fine-tune "
        f"{pct(s['tuned_accuracy'])} (change {points(s['accuracy_change'])} points)",
        f"format breaks (answers not answer-shaped): fine-tune {pct(s['format_breaks'])}, base {pct(s['base_format_breaks'])}"
        + (f" (fine-tune: {kinds})" if (kinds := ", ".join(f"{k} {v}" for k, v in card["answer_shapes"]["tuned"].items()
                                                           if k != "answer" and v)) else ""),
    ]
    if s["guessable_facts"]:
        lines.append(f"guessable facts (HighlyKnown, set aside by the guess filter, not in retention): "
                     f"{s['guessable_facts']}, fine-tune right on {pct(s['guessable_retention'])}")
    if card["edited"]:
        f = card["edited"]["flips"]
        lines.append(f"edited facts (subject in the training data; not forgetting): {card['edited']['facts']} "
                     f"(base right on {f['retained']['count'] + f['forgotten']['count']}, fine-tune on "
                     f"{f['retained']['count'] + f['acquired']['count']})")
    if card["acquisition"]:
        q = card["acquisition"]
        lines.append(f"acquisition of the {q['questions']} training facts: fine-tune {pct(q['tuned_accuracy'])}, "
                     f"base {pct(q['base_accuracy'])} (change {points(q['change'])} points)")
    return lines


def relation_table(card: dict, all_relations: bool = False) -> list[str]:
    rows = ["| relation | questions | recalled by base | retention | forgotten (format breaks) | base accuracy | "
            "fine-tune accuracy | format breaks |", "|---|---:|---:|---|---|---|---|---|"]
    for r, m in card["by_relation"].items():
        if not all_relations and not m["recalled"]:
            continue
        rows.append(f"| {r} {relation_name(r)} | {m['questions']} | {m['recalled']} | {pct(m['retention'])} | "
                    f"{m['forgotten']} ({m['forgotten_format_breaks']}) | {pct(m['base_accuracy'])} | "
                    f"{pct(m['tuned_accuracy'])} | {pct(m['format_breaks'])} |")
    return rows


def flip_table(card: dict) -> list[str]:
    rows = ["| questions | label | n | retained | forgotten | acquired | never known |", "|---|---|---:|---|---|---|---|"]
    order = ["HighlyKnown, recalled", "HighlyKnown, guessable", "MaybeKnown", "WeaklyKnown", "Unknown", NOT_SAMPLED]

    def row(name, f):
        return (f"| {name} | | {f['questions']} | " + " | ".join(
            f"{f[k]['count']} ({pct(f[k]['share'])})" for k in ("retained", "forgotten", "acquired", "never_known"))
            + " |")

    rows.append(row("all (not edited)", card["flips"]).replace("| all (not edited) | |", "| all (not edited) | all |"))
    for label in sorted(card["by_category"], key=lambda c: order.index(c) if c in order else len(order)):
        rows.append(row("", card["by_category"][label]["flips"]).replace("|  | |", f"| | {label} |"))
    return rows


def render(card: dict) -> str:
    lines = headline(card)
    lines += ["", "Per relation (relations where the base recalls at least one fact):", *relation_table(card),
              "", "Flips, prompt 0 (base right or wrong -> fine-tune right or wrong):", *flip_table(card)]
    if card["notes"]:
        lines += ["", "notes:", *(f"- {n}" for n in card["notes"])]
    return "\n".join(lines)
