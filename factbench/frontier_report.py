"""The frontier summary (factbench.frontier.analyse) as Markdown tables and as a PNG.

Nothing is recomputed here: every number is the summary's own. The Markdown states the question counts,
the seeds and how the intervals were made, and says no more than was measured (with one seed, the
intervals cover question sampling only).
"""

from __future__ import annotations

from pathlib import Path


def pct(ci: dict | None) -> str:
    """"71.2% [68.0, 74.1]"; "–" when there is no value."""
    if not ci or ci.get("value") is None:
        return "–"
    return f"{100 * ci['value']:.1f}% [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"


def points(ci: dict | None) -> str:
    """A difference in percentage points: "+8.8 [+5.1, +12.3]"."""
    if not ci or ci.get("value") is None:
        return "–"
    v, lo, hi = (round(100 * ci[k], 1) + 0.0 for k in ("value", "low", "high"))  # + 0.0: no "-0.0"
    return f"{v:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def _level(x: float) -> str:
    return f"{100 * x:g}%"


def _seed_list(seeds: list) -> str:
    """`seed 0` / `seeds 0, 1, 2`."""
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _seeds(summary: dict) -> str:
    seeds = summary["seeds"]
    if summary["paired_seeds"]:
        return f"{_seed_list(next(iter(seeds.values())))} (every variant)"
    return "; ".join(f"{v}: {_seed_list(s)}" for v, s in seeds.items())


def intervals_line(summary: dict) -> str:
    b = summary["bootstrap"]
    k = {len(s) for s in summary["seeds"].values()}
    line = (f"Intervals: {100 * b['level']:g}% percentile bootstrap, {b['resamples']} replicates (seed {b['seed']}), "
            "resampling held-out recalled questions and new questions independently")
    line += " and seeds with replacement" if k != {1} else ""
    if b["paired"]:
        line += "; one draw serves every variant, so differences and shares are paired by question and seed."
    else:
        line += "; variants have different seeds, so no paired differences are reported."
    if k == {1}:
        line += " With one seed per variant the intervals cover question sampling only, not seed-to-seed variation."
    elif 1 in k:
        line += " Variants with one seed have intervals that cover question sampling only."
    return line


def _protocol_md(summary: dict, name: str, p: dict) -> list[str]:
    ref, stab = summary["reference"], summary["stability"]
    lines = [f"## {name} (protocol {p['protocol_hash']})", ""]
    footnotes: list[str] = []

    def note(text: str) -> str:
        """The footnote number of `text` (one number per distinct text)."""
        if text not in footnotes:
            footnotes.append(text)
        return f"({footnotes.index(text) + 1})"

    def mark(ci, what="the level is reached"):
        if ci and ci.get("value") is not None and ci.get("undefined_replicates"):
            share = ci["undefined_replicates"] / summary["bootstrap"]["resamples"]
            return " " + note(f"interval over the {100 * (1 - share):.1f}% of replicates where {what}")
        return ""

    levels = p["levels"]
    lines.append("### Retention at matched acquisition")
    lines.append("")
    if levels:
        how = "given" if p["levels_source"] == "given" else "default: evenly spaced multiples of 5% between the " \
            "learning variants' highest start and the reference's lowest maximum acquisition"
        lines.append(f"Held-out recalled facts still right when a variant has learned the given share of new facts "
                     f"(acquisition levels {', '.join(map(_level, levels))}, {how}; linear interpolation between "
                     f"evaluation points, mean over seeds). Differences are in percentage points against {ref} "
                     "(positive: keeps more facts); P(diff ≤ 0) is the share of bootstrap replicates with a "
                     f"difference ≤ 0. Share of forgetting removed: (F_{ref} − F_variant) / (F_{ref} − "
                     f"F_{stab} final), F = 1 − retention.")
    else:
        lines.append("No acquisition levels to read the variants at (see notes).")
    if p["non_learning"]:
        lines.append("")
        lines.append(f"Variants that do not learn (mean maximum acquisition < 20%: {', '.join(p['non_learning'])}) "
                     "are shown at their final point.")
    lines += ["", f"| read at | variant | held-out retention | vs {ref} (points) | P(diff ≤ 0) "
                  "| share of forgetting removed |", "|---|---|---|---|---|---|"]
    for i, x in enumerate(levels):
        for v in p["learning"]:
            m = p["matched"][v][i]
            if m["retention"]["value"] is None:
                who = f" ({_seed_list(m['seeds_not_reaching'])})" if len(summary["seeds"][v]) > 1 else ""
                ret = f"not reached{who}"
            else:
                ret = pct(m["retention"]) + mark(m["retention"])
                past = m.get("seeds_past_at_first_point")
                if past:  # the level was passed before the first evaluation: that point stands in for it
                    who = f"{_seed_list(past)} of " if len(summary["seeds"][v]) > 1 else ""
                    ret += " " + note(f"{who}{v} had passed {_level(x)} at its first evaluation point: the value "
                                      "is that point's retention, not an interpolation")
            diff, prob, share = "–", "–", "–"
            if v in p["differences"]:
                d = p["differences"][v][i]
                diff = points(d) + mark(d)
                prob = "–" if d["p_at_or_below_zero"] is None else f"{d['p_at_or_below_zero']:.3f}"
            elif v == ref:
                diff = "(reference)"
            if v in p["share_removed"]:
                s = p["share_removed"][v][i]
                if s["value"] is not None:
                    share = pct(s) + mark(s, "the share is defined")
                elif s.get("undefined_because") and m["retention"]["value"] is not None:
                    share = "undefined " + note(f"share undefined at {_level(x)}: {s['undefined_because']}")
            lines.append(f"| acquisition {_level(x)} | {v} | {ret} | {diff} | {prob} | {share} |")
    for v in p["non_learning"]:
        f = p["final_points"][v]
        lines.append(f"| final point (acquisition {pct(f['acquisition'])}) | {v} | {pct(f['retention'])} "
                     "| – | – | – |")
    if p["stability_final"]:
        lines += ["", f"Stability reference {stab}: final forgetting {pct(p['stability_final']['forgetting'])} "
                      f"(1 − final retention {pct(p['stability_final']['retention'])})."]
    if footnotes:
        lines += [""] + [f"({i}) {text}" for i, text in enumerate(footnotes, 1)]

    lines += ["", "### Over training, per variant", "",
              "Each run's own last evaluation point and its retention peak; peak-relative forgetting = "
              "(peak − final) / peak of retention, mean over seeds.", "",
              "| variant | seeds | points | final acquisition | final retention | peak retention "
              "| peak-relative forgetting |", "|---|---|---|---|---|---|---|"]
    for v, pk in p["peak_relative"].items():
        n = sorted({r["points"][name] for r in summary["runs"] if r["variant"] == v})
        lines.append(f"| {v} | {len(summary['seeds'][v])} | {'–'.join(map(str, n))} | {pct(pk['final_acquisition'])} "
                     f"| {pct(pk['final_retention'])} | {pct(pk['peak_retention'])} "
                     f"| {pct(pk['peak_relative_forgetting'])} |")
    if p["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in p["notes"]]
    return lines + [""]


def markdown(summary: dict) -> str:
    """The whole report: what was measured, how the intervals were made, then per protocol the matched table and
    the per-variant table."""
    q = summary["questions"]
    held = f"{q['heldout_recalled']} held-out Known questions the base recalled"
    held += f" ({q['heldout_guessable']} guessable ones left out)" if q["guessability_known"] else \
        " (guessability unknown: every held-out question counts)"
    lines = [
        "# Retention–acquisition frontier",
        "",
        f"Study `{summary['study']}`: variants {', '.join(summary['variants'])}; {_seeds(summary)}; {held}; "
        f"{q['new']} new (Unknown, trained-on) questions. Retention = share of those held-out questions answered "
        "right (greedy, exact match); acquisition = share of the new questions answered right. Each protocol is "
        "reported on its own; numbers are never mixed across protocols.",
        "",
        intervals_line(summary),
        "",
    ]
    if summary["notes"]:
        lines += ["Notes:"] + [f"- {n}" for n in summary["notes"]] + [""]
    for name, p in summary["protocols"].items():
        lines += _protocol_md(summary, name, p)
    return "\n".join(lines)


def _bar(ci: dict) -> tuple[float, float]:
    return max(0.0, ci["value"] - ci["low"]), max(0.0, ci["high"] - ci["value"])


def plot(summary: dict, path: Path | str) -> Path:
    """frontier.png: one panel per protocol, retention (y) against acquisition (x), one line per variant through
    its evaluation points with x and y error bars (95% bootstrap), matched levels as faint vertical lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .files import atomic_path
    from .leaderboard.plots import color

    protocols = summary["protocols"]
    fig = Figure(figsize=(5.6 * max(1, len(protocols)), 4.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(protocols)), squeeze=False)[0]
    for ax, (name, p) in zip(axes, protocols.items(), strict=False):
        for x in p["levels"]:
            ax.axvline(x, color="0.6", alpha=0.35, lw=0.8, ls="--", zorder=0)
        for i, v in enumerate(summary["variants"]):
            pts = [pt for pt in p["curves"][v]["points"]
                   if pt["acquisition"]["value"] is not None and pt["retention"]["value"] is not None]
            if not pts:
                continue
            xs = [pt["acquisition"]["value"] for pt in pts]
            ys = [pt["retention"]["value"] for pt in pts]
            xerr = list(zip(*(_bar(pt["acquisition"]) for pt in pts), strict=True))
            yerr = list(zip(*(_bar(pt["retention"]) for pt in pts), strict=True))
            ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="o", ms=3.5, lw=1.2, elinewidth=0.7, capsize=2,
                        color=color(i), label=v + _role(v, p, summary))
        ax.set_xlabel("acquisition: new (Unknown, trained-on) facts right")
        ax.set_ylabel("retention: held-out recalled Known facts right")
        ax.set_title(f"{name}: retention against acquisition" + (", levels dashed" if p["levels"] else ""),
                     fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    k = {len(s) for s in summary["seeds"].values()}
    fig.text(0.01, 0.01, "mean over seeds" + (" (one seed: bars are question sampling only)" if k == {1} else
                                              "; bars: 95% bootstrap over questions and seeds"),
             fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return Path(path)


def _role(variant: str, protocol: dict, summary: dict) -> str:
    """A legend's note: the stability reference is meant not to learn new facts; another non-learner is not matched."""
    if variant == summary.get("stability"):
        return " (stability reference)"
    return "" if variant in protocol["learning"] else " (learns < 20% of new facts: not matched)"
