"""Retention against acquisition as a PNG (for README.md), and the axes both plots share.

matplotlib's object API with the Agg canvas, not pyplot: no global backend switch, no display
needed, nothing left open in the calling process.
"""

from __future__ import annotations

import io
import math

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22"]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _has(rate) -> bool:
    return bool(rate) and all(rate.get(k) is not None for k in ("value", "low", "high"))


def plotted(t) -> list:
    """The rows with a point to plot: both retention and acquisition measured (n > 0)."""
    return [e for e in t.entries if _has(e.summary["acquisition"]) and _has(e.summary["retention"])]


def base_plotted(t) -> tuple[dict, dict] | None:
    """The base's own (retention, acquisition), when both were measured."""
    base_retention, base_acquisition = t.entries[0].base_point()
    return (base_retention, base_acquisition) if _has(base_retention) and _has(base_acquisition) else None


def bar(rate: dict) -> tuple[float, float]:
    """The error bar's lengths below and above the value, never negative (matplotlib refuses those)."""
    return max(0.0, rate["value"] - rate["low"]), max(0.0, rate["high"] - rate["value"])


def axis_ranges(t) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axes snapped to 10% steps around every point, interval and the base: close-up, never misleading."""
    xs, ys = [], []
    for e in plotted(t):
        xs += [e.summary["acquisition"][k] for k in ("value", "low", "high")]
        ys += [e.summary["retention"][k] for k in ("value", "low", "high")]
    if base := base_plotted(t):
        xs.append(base[1]["value"])
        ys.append(base[0]["value"])

    def snap(values):
        if not values:
            return 0.0, 1.0
        low, high = math.floor(min(values) * 10 - 0.2) / 10, math.ceil(max(values) * 10 + 0.2) / 10
        low, high = max(0.0, low), min(1.0, high)
        if high - low < 0.2:  # keep a little context around a tight cluster
            low, high = max(0.0, high - 0.2), min(1.0, max(high, low + 0.2))
        return low, high

    return snap(xs), snap(ys)


def ticks(low: float, high: float) -> list[float]:
    step = 0.1 if high - low <= 0.5 else 0.2
    first = math.ceil(low / step - 1e-9)
    return [round(k * step, 10) for k in range(first, int(math.floor(high / step + 1e-9)) + 1)]


def tradeoff_png(t) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if base := base_plotted(t):
        base_retention, base_acquisition = base
        ax.plot([base_acquisition["value"]], [base_retention["value"]], "s", mfc="none", mec="black", ms=8)
        ax.annotate("base", (base_acquisition["value"], base_retention["value"]), xytext=(6, 6),
                    textcoords="offset points", fontsize=8)
    for i, e in enumerate(t.entries):
        if e not in plotted(t):
            continue
        ret, acq = e.summary["retention"], e.summary["acquisition"]
        (x_low, x_high), (y_low, y_high) = bar(acq), bar(ret)
        ax.errorbar(acq["value"], ret["value"], xerr=[[x_low], [x_high]], yerr=[[y_low], [y_high]], fmt="o",
                    color=color(i), capsize=3, ms=6)
        name = e.tuned if len(e.tuned) <= 28 else e.tuned[:27] + "…"
        # parse_math=False: a "$" in a model name is text, not mathtext (which may fail to parse)
        ax.annotate(name, (acq["value"], ret["value"]), xytext=(6, 6), textcoords="offset points", fontsize=8,
                    parse_math=False)
    (x0, x1), (y0, y1) = axis_ranges(t)
    pad_x, pad_y = 0.02 * (x1 - x0), 0.02 * (y1 - y0)  # a point on the edge (the base at 0%) stays whole
    ax.set_xlim(x0 - pad_x, x1 + pad_x)
    ax.set_ylim(y0 - pad_y, y1 + pad_y)
    ax.set_xticks(ticks(x0, x1))
    ax.set_yticks(ticks(y0, y1))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(alpha=0.3)
    ax.set_xlabel("acquisition: new facts answered right")
    ax.set_ylabel("retention: known facts kept")
    title = f"{t.base} · protocol {t.protocol_hash}"
    ax.set_title(title if len(title) <= 70 else title[:69] + "…", fontsize=9, parse_math=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    # metadata: no Software/date stamp, so rebuilding unchanged cards gives identical files
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
