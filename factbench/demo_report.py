"""The demo's comparison: one row per fine-tune from its score card, as Markdown and as a plot.

Numbers are the score cards' own (bootstrap 95% intervals over questions); nothing is recomputed
here except the layout.
"""

from __future__ import annotations

from pathlib import Path


def _ci(rate: dict | None) -> str:
    if not rate or rate.get("value") is None:
        return "–"
    return f"{rate['value']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}]"


def rows(cards: dict[str, dict]) -> list[dict]:
    """The figures the table shows, per fine-tune, JSON-ready."""
    out = []
    for name, card in cards.items():
        s, sets = card["summary"], card["sets"]
        guess = card["guessable"]["sets"].get("heldout")
        out.append({
            "fine_tune": name,
            "heldout_questions": sets["heldout"].get("questions"),
            "base_retention": s["base_heldout_accuracy"],
            "retention": s["retention"],
            "heldout_drop": s["heldout_drop"],
            "guessable_questions": guess["questions"] if guess else 0,
            "guessable_base": guess["base_accuracy"] if guess else None,
            "guessable_retention": guess["tuned_accuracy"] if guess else None,
            "unfiltered_retention": unfiltered(card),
            "new_questions": sets["new"].get("questions"),
            "acquisition": s["acquisition"],
            "known_train_accuracy": s["known_train_accuracy"],
            "peak_relative_forgetting": s["peak_relative_forgetting"],
        })
    return out


def unfiltered(card: dict) -> dict | None:
    """Held-out accuracy over recalled and guessable facts together: what the score would be without
    the guess filter (same bootstrap settings as the card)."""
    from .compare import _bits
    from .stats import rate_with_ci

    held = card["outcomes"].get("heldout")
    if not held or not held["ids"]:
        return None
    st = card["statistics"]
    return rate_with_ci(_bits(held["tuned"]), resamples=st["bootstrap_resamples"], seed=st["seed"], level=st["level"])


def table(cards: dict[str, dict]) -> str:
    r = rows(cards)
    first = r[0]
    lines = [
        f"Held-out Known facts: {first['heldout_questions']} recalled (base accuracy "
        f"{_ci(first['base_retention'])}), {first['guessable_questions']} guessable (base accuracy "
        f"{_ci(first['guessable_base'])}); new facts: {first['new_questions']} Unknown training facts. "
        "Accuracy with bootstrap 95% intervals.",
        "",
        "| fine-tune | held-out recalled facts still right | drop vs base | held-out guessable facts still right "
        "| all held-out facts (no guess filter) | new facts learned | Known training facts right "
        "| peak-relative forgetting |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r:
        peak = x["peak_relative_forgetting"]
        lines.append(f"| {x['fine_tune']} | {_ci(x['retention'])} | {_ci(x['heldout_drop'])} | "
                     f"{_ci(x['guessable_retention'])} | {_ci(x['unfiltered_retention'])} | {_ci(x['acquisition'])} | {_ci(x['known_train_accuracy'])} | "
                     f"{'–' if peak is None else f'{peak:.3f}'} |")
    return "\n".join(lines)


def versus(cards: dict[str, dict], reference: str = "sft") -> list[str]:
    """Each fine-tune against `reference`, paired by question (factbench compare: exact McNemar + bootstrap)."""
    from .compare import compare_pair, p_value
    from .scorecard import pct, points

    if reference not in cards:
        return []
    lines = []
    for name, card in cards.items():
        if name == reference:
            continue
        pair = compare_pair((name, card), (reference, cards[reference]))
        line = f"- {pair['verdict']}"
        acq = pair["acquisition"]
        if acq:
            share = (f"; {acq['a']['value'] / acq['b']['value']:.0%} of what {reference} learns"
                     if acq["b"]["value"] else "")
            line += (f". New facts learned: {name} {pct(acq['a'])} vs {reference} {pct(acq['b'])} "
                     f"(difference {points(acq['difference'])} points, McNemar p = {p_value(acq['mcnemar_p'])}{share})")
        lines.append(line + ".")
    return lines


def curves_png(cards: dict[str, dict], path: Path) -> Path:
    """Held-out accuracy against new-fact accuracy after every epoch, per fine-tune (the trade-off frontier)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .files import atomic_path
    from .leaderboard.plots import color

    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (name, card) in enumerate(cards.items()):
        epochs = (card.get("training_log") or {}).get("epochs") or []
        points = [(e.get("new_accuracy"), e.get("heldout_accuracy")) for e in epochs]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", color=color(i), label=name)
            ax.annotate(f"{len(points) - 1}", points[-1], textcoords="offset points", xytext=(4, 4), fontsize=8,
                        color=color(i))
    ax.set_xlabel("new facts learned (Unknown training facts right)")
    sizes = {e.get("heldout_questions") for c in cards.values() for e in (c.get("training_log") or {}).get("epochs") or []}
    sizes.discard(None)
    # The per-epoch log asks the first N held-out questions (recalled and guessable alike), not the card's set.
    ax.set_ylabel("held-out Known facts right" + (f" (first {max(sizes)}, per-epoch log)" if sizes else ""))
    ax.set_title("Retention against acquisition, epoch by epoch (last epoch numbered)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
