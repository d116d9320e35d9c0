"""Paired comparison of fine-tunes of one base: which forgets more, and how sure can we be?

Two score cards of the same base, scored on the same held-out questions, give two answers to each
question. Only the discordant questions (right under one fine-tune, wrong under the other) carry
evidence of a difference, so each pair of cards is tested with the exact McNemar test on them, and
the difference in forgetting gets a paired bootstrap interval over questions (factbench.stats).
The verdict says which forgets more only when p < 0.05, and always states the interval.

Acquisition of the new facts, when both cards have it, is compared the same way.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from . import scorecard, stats
from .errors import FactbenchError
from .identities import model_key
from .metrics import DEFAULT_BOOTSTRAP, Bootstrap
from .protocol import explain_mismatch
from .scorecard import pct, points

ALPHA = 0.05
COMPARISON_SCHEMA = "factbench.comparison/1"


class CompareError(FactbenchError):
    """Cards that cannot be compared."""


def load_cards(paths: list[Path | str]) -> list[tuple[str, dict]]:
    """Each card with a short name: its file name without .json (the path, when two share a name)."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise CompareError("compare needs at least two score cards")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise CompareError("a score card is given twice")
    cards = [scorecard.load_card(p) for p in paths]
    stems = [p.name.removesuffix(".json") for p in paths]
    names = stems if len(set(stems)) == len(stems) else [str(p) for p in paths]
    return list(zip(names, cards))


def check_comparable(a: tuple[str, dict], b: tuple[str, dict]) -> list[str]:
    """Refuse cards of different protocols, bases or held-out questions; return notes on lesser differences."""
    (na, ca), (nb, cb) = a, b
    if ca["protocol_hash"] != cb["protocol_hash"]:
        raise CompareError(f"{na} and {nb} were scored under different question protocols "
                           f"({explain_mismatch(ca['protocol'], cb['protocol'], (na, nb))})")
    key_a, key_b = model_key(ca["base"]), model_key(cb["base"])
    same_answers = ca["base"]["answers_sha256"] == cb["base"]["answers_sha256"]
    if not same_answers and (key_a is None or key_a != key_b):
        raise CompareError(f"{na} and {nb} are fine-tunes of different bases ({na}: {ca['base']['label']}, "
                           f"{key_a or 'no model identity'}; {nb}: {cb['base']['label']}, {key_b or 'no model identity'})")
    oa, ob = ca["outcomes"]["heldout"], cb["outcomes"]["heldout"]
    if ca["sets"]["heldout"]["ids_sha256"] != cb["sets"]["heldout"]["ids_sha256"] or oa["guessable"] != ob["guessable"]:
        raise CompareError(f"{na} and {nb} were scored on different held-out questions ({len(oa['ids'])} vs "
                           f"{len(ob['ids'])}; question-set hash {ca['sets']['heldout']['ids_sha256'][:12]} vs "
                           f"{cb['sets']['heldout']['ids_sha256'][:12]}): score both on the same split and questions")
    notes = []
    if oa["base"] != ob["base"]:
        notes.append(f"the base was evaluated differently for {na} and {nb} (held-out base accuracy "
                     f"{pct(ca['summary']['base_heldout_accuracy'])} vs {pct(cb['summary']['base_heldout_accuracy'])}); "
                     "the comparison uses the fine-tunes' answers only")
    ea, eb = ca["tuned"].get("engine") or {}, cb["tuned"].get("engine") or {}
    how_a, how_b = (ea.get("engine"), ea.get("dtype")), (eb.get("engine"), eb.get("dtype"))
    if how_a != how_b:
        notes.append(f"{na} was answered by {' '.join(map(str, how_a))}, {nb} by {' '.join(map(str, how_b))}: "
                     "part of any difference may come from the engine, not the fine-tune")
    return notes


def _bits(s: str) -> np.ndarray:
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


def paired_table(a_right: np.ndarray, b_right: np.ndarray) -> dict:
    return {"both_right": int((a_right & b_right).sum()), "only_a_right": int((a_right & ~b_right).sum()),
            "only_b_right": int((~a_right & b_right).sum()), "both_wrong": int((~a_right & ~b_right).sum())}


def compare_pair(a: tuple[str, dict], b: tuple[str, dict], boot: Bootstrap = DEFAULT_BOOTSTRAP) -> dict:
    """Forgetting (and acquisition, when both have it) of two fine-tunes of one base, paired by question."""
    notes = check_comparable(a, b)
    (na, ca), (nb, cb) = a, b
    out = {"a": na, "b": nb, "notes": notes}
    held_a, held_b = ca["outcomes"]["heldout"], cb["outcomes"]["heldout"]
    recalled = ~_bits(held_a["guessable"])  # the headline is on recalled facts, as in the cards
    a_right, b_right = _bits(held_a["tuned"])[recalled], _bits(held_b["tuned"])[recalled]
    table = paired_table(a_right, b_right)
    out["forgetting"] = {
        "questions": int(recalled.sum()),
        "table": table,
        "a": boot.rate(~a_right), "b": boot.rate(~b_right),
        "difference": boot.paired(~a_right, ~b_right),  # forgetting of a - forgetting of b
        "mcnemar_p": stats.mcnemar_exact(table["only_a_right"], table["only_b_right"]),
    }
    out["verdict"] = forgetting_verdict(na, nb, out["forgetting"])
    new_a, new_b = ca["outcomes"].get("new"), cb["outcomes"].get("new")
    out["acquisition"] = None
    if new_a and new_b and new_a["ids"] == new_b["ids"]:
        a_new, b_new = _bits(new_a["tuned"]), _bits(new_b["tuned"])
        t = paired_table(a_new, b_new)
        out["acquisition"] = {"questions": len(a_new), "table": t, "a": boot.rate(a_new), "b": boot.rate(b_new),
                              "difference": boot.paired(a_new, b_new),
                              "mcnemar_p": stats.mcnemar_exact(t["only_a_right"], t["only_b_right"])}
    elif new_a and new_b:
        notes.append(f"{na} and {nb} answered different new facts: acquisition is not compared")
    return out


def p_value(p: float) -> str:
    return f"{p:.2g}"


def forgetting_verdict(na: str, nb: str, f: dict) -> str:
    """One plain-language sentence that states the uncertainty."""
    head = f"{na} forgets {pct(f['a'])} vs {nb} {pct(f['b'])} of {f['questions']} held-out facts"
    d, p = f["difference"], f["mcnemar_p"]
    if d["value"] is None:
        return f"{head}: nothing to compare"
    interval = points(d).split(" ", 1)[1] + " points"  # "[-3.1, +5.2] points"
    if p < ALPHA:
        more = na if f["table"]["only_b_right"] > f["table"]["only_a_right"] else nb
        return (f"{head}; {more} forgets more (McNemar p = {p_value(p)}; difference {na} - {nb} "
                f"{points(d).split(' ', 1)[0]} points, 95% interval {interval})")
    inside = d["low"] <= 0 <= d["high"]
    return (f"{head}; no detectable difference (McNemar p = {p_value(p)}); the 95% interval of the difference "
            f"{interval} " + ("includes 0" if inside else
                              "excludes 0, but the exact test is not significant at 0.05: weak evidence at most"))


def compare(named: list[tuple[str, dict]], boot: Bootstrap = DEFAULT_BOOTSTRAP) -> dict:
    """Every pair of cards, in the order given."""
    return {"schema": COMPARISON_SCHEMA,
            "cards": [{"name": n, "tuned": c["tuned"]["label"], "base": c["base"]["label"]} for n, c in named],
            "statistics": {"bootstrap_resamples": boot.resamples, "seed": boot.seed, "level": boot.level,
                           "alpha": ALPHA, "test": "exact McNemar on discordant questions"},
            "pairs": [compare_pair(a, b, boot) for a, b in combinations(named, 2)]}


def render(comparison: dict) -> str:
    out = []
    for pair in comparison["pairs"]:
        na, nb, f = pair["a"], pair["b"], pair["forgetting"]
        t = f["table"]
        w = max(len(na), len(nb)) + 8
        out += [f"{na} vs {nb}: held-out known facts ({f['questions']})",
                f"  {'':<{w}}{nb + ' right':>{w}}{nb + ' wrong':>{w}}",
                f"  {na + ' right':<{w}}{t['both_right']:>{w}}{t['only_a_right']:>{w}}",
                f"  {na + ' wrong':<{w}}{t['only_b_right']:>{w}}{t['both_wrong']:>{w}}",
                f"  forgetting {na} {pct(f['a'])}, {nb} {pct(f['b'])}; difference {points(f['difference'])} points; "
                f"McNemar p = {p_value(f['mcnemar_p'])}",
                f"  verdict: {pair['verdict']}"]
        acq = pair["acquisition"]
        if acq:
            out.append(f"  acquisition of {acq['questions']} new facts: {na} {pct(acq['a'])}, {nb} {pct(acq['b'])}; "
                       f"difference {points(acq['difference'])} points; McNemar p = {p_value(acq['mcnemar_p'])}")
        out += [f"  note: {n}" for n in pair["notes"]] + [""]
    return "\n".join(out).rstrip()
