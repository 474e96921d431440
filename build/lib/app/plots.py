"""Server-side plots (matplotlib, Agg, no pyplot state) and their cache.

Cached by (patient, data version, model version, horizon, coverage, engine, hour, panel, format).
"""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from app import cache, services
from app.observability import METRICS

MIMETYPES = {"png": "image/png", "svg": "image/svg+xml"}
#: panel -> endpoints drawn (one axis per group)
PANELS = {
    "bp": [["sbp_mmhg", "dbp_mmhg"]],
    "ras": [["angII_pg_per_ml", "angI_pg_per_ml"], ["pra_ng_per_ml_per_h"]],
    "drug": [["diacid_ng_per_ml"], ["ace_inhibition_pct"]],
}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def _times(fc: dict, name: str) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in fc["endpoints"][name]["times"]]


def _draw(ax, fc: dict, name: str, color: str, label: str | None = None) -> None:
    ep = fc["endpoints"][name]
    t = _times(fc, name)
    ax.fill_between(t, ep["lower"], ep["upper"], color=color, alpha=0.2, linewidth=0)
    ax.plot(t, ep["median"], color=color, label=label or f"{name} ({ep['unit']})")


def _observed(ax, fc: dict, name: str, color: str) -> None:
    pts = [(datetime.fromisoformat(o["time"]), o["value"])
           for o in fc.get("observations", []) if o["code"] == name]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color=color, zorder=3)


def _margins(fig: Figure, rows: int) -> None:
    """Fixed margins: matplotlib's constrained layout doubles the rendering time."""
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.1 / rows, bottom=0.16 / rows,
                        hspace=0.35)


def _finish(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=90)
    return buf.getvalue()


def _date_axis(ax) -> None:
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))


def render_forecast(fc: dict, panel: str, fmt: str) -> bytes:
    """Observed points, forecast median and central interval for the panel's endpoints."""
    groups = [[n for n in group if n in fc["endpoints"]] for group in PANELS[panel]]
    groups = [g for g in groups if g] or [[]]
    fig = Figure(figsize=(8, 2.6 * len(groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    _margins(fig, len(groups))
    now = datetime.fromisoformat(fc["now"])
    for ax, group in zip(axes, groups, strict=True):
        for i, name in enumerate(group):
            _draw(ax, fc, name, COLORS[i])
            _observed(ax, fc, name, COLORS[i])
        ax.axvline(now, color="0.4", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
        _date_axis(ax)
        if group:
            ax.legend(loc="upper right", fontsize=8)
    axes[0].set_title(f"{round(fc['coverage'] * 100)}% interval, model "
                      f"{fc['model_version']} ({fc['engine']})", fontsize=9)
    return _finish(fig, fmt)


def render_whatif(result: dict, fmt: str = "png") -> bytes:
    """Systolic/diastolic BP under the current and the proposed regimen."""
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    _margins(fig, 1)
    for key, color in (("current", COLORS[0]), ("proposed", COLORS[2])):
        fc = result[key]
        _draw(ax, fc, "sbp_mmhg", color, f"SBP, {key}")
        ep = fc["endpoints"]["dbp_mmhg"]
        ax.plot(_times(fc, "dbp_mmhg"), ep["median"], color=color, linestyle="--",
                label=f"DBP, {key}")
    ax.set_ylabel("mmHg")
    ax.grid(alpha=0.3)
    _date_axis(ax)
    ax.legend(fontsize=8, ncols=2)
    return _finish(fig, fmt)


def render_waveform(wave: dict, fmt: str = "png") -> bytes:
    """Arterial pressure over a few beats."""
    fig = Figure(figsize=(8, 2.4))
    ax = fig.subplots()
    _margins(fig, 1)
    ax.plot(wave["time_s"], wave["arterial_pressure_mmhg"], color=COLORS[1])
    ax.set_xlabel("s")
    ax.set_ylabel("mmHg")
    ax.set_title(f"{wave['sbp_mmhg']:.0f}/{wave['dbp_mmhg']:.0f} mmHg, "
                 f"{wave['hr_bpm']:.0f} /min", fontsize=9)
    ax.grid(alpha=0.3)
    return _finish(fig, fmt)


def forecast_plot(patient_id: str, fmt: str, panel: str, horizon_h: float, coverage: float,
                  engine: str | None, actor: str | None) -> tuple[bytes, str]:
    """The rendered forecast plot (bytes, mimetype), from cache when the inputs are unchanged."""
    key, _ = services.forecast_key(patient_id, horizon_h, coverage, engine, "plot", panel, fmt)
    data, cached = cache.plots().get_or_compute(
        key, lambda: render_forecast(services.forecast(patient_id, horizon_h, coverage, engine,
                                                       actor), panel, fmt))
    METRICS.count_cache("plot_hit" if cached else "plot_miss")
    return data, MIMETYPES[fmt]
