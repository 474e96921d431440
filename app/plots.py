"""Server-side plots (matplotlib, Agg, no pyplot state) and their cache.

Cached by (patient, data version, model version, horizon, coverage, engine, hour, panel, format).
Figures are 8 in wide and shown 720 px wide; PNGs are rendered at 180 dpi (2x, crisp on high-DPI
screens) and every font is >= 10 pt, i.e. >= 9 pt at the displayed size. Times are drawn in the
ward's zone (``WARD_TIMEZONE``, the setting the pages use), UTC outside an app context.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
from flask import current_app, has_app_context
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from app import cache, services
from app.observability import METRICS

MIMETYPES = {"png": "image/png", "svg": "image/svg+xml"}
#: panel -> endpoints drawn (one axis per group, all axes of a figure share the time axis)
PANELS = {
    "bp": [["sbp_mmhg", "dbp_mmhg"]],
    "ras": [["angII_pg_per_ml"], ["angI_pg_per_ml"], ["pra_ng_per_ml_per_h"]],
    "drug": [["diacid_ng_per_ml"], ["ace_inhibition_pct"]],
}
#: endpoint -> (legend label, display unit, colour)
LABELS = {
    "sbp_mmhg": ("Systolic BP", "mmHg", "#d62728"),
    "dbp_mmhg": ("Diastolic BP", "mmHg", "#1f77b4"),
    "angII_pg_per_ml": ("Angiotensin II", "pg/mL", "#9467bd"),
    "angI_pg_per_ml": ("Angiotensin I", "pg/mL", "#8c564b"),
    "pra_ng_per_ml_per_h": ("Plasma renin activity", "ng/mL/h", "#2ca02c"),
    "diacid_ng_per_ml": ("ACE inhibitor (active drug) plasma concentration", "ng/mL", "#ff7f0e"),
    "ace_inhibition_pct": ("ACE inhibition", "%", "#17becf"),
}
#: first endpoint of an axis -> its y-axis quantity (short: the axes are ~1.4 in tall)
YLABELS = {"sbp_mmhg": "BP", "angII_pg_per_ml": "Ang II", "angI_pg_per_ml": "Ang I",
           "pra_ng_per_ml_per_h": "PRA", "diacid_ng_per_ml": "Drug level",
           "ace_inhibition_pct": "ACE inhibition"}
#: prodrug -> the active diacid that the concentration axis shows (others are active as given)
ACTIVE = {"benazepril": "benazeprilat", "cilazapril": "cilazaprilat",
          "delapril": "delaprilat", "ramipril": "ramiprilat"}
UNTREATED = "No ACE inhibitor given"
#: figure height (in) per panel; the width is always 8 in
HEIGHTS = {"bp": 3.2, "ras": 6.0, "drug": 5.0, "whatif": 3.6, "waveform": 3.0}
WIDTH_IN, PNG_DPI, FONT = 8.0, 180, 10.0
#: measurements older than this before the forecast's issue time are not drawn
HISTORY = timedelta(hours=72)
TIME_FORMAT = "%d %b\n%H:%M"
GREY = "0.35"


def ward_zone() -> ZoneInfo:
    """The ward's time zone: ``WARD_TIMEZONE`` of the current app (the prewarm thread runs in
    one too), UTC without an app context."""
    name = current_app.config.get("WARD_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or "UTC")


def _t(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _times(fc: dict, name: str) -> list[datetime]:
    return [_t(t) for t in fc["endpoints"][name]["times"]]


def _history(fc: dict) -> list[dict]:
    """The observations in ``fc`` from the drawn history window (time order kept)."""
    since = _t(fc["now"]) - HISTORY
    return [o for o in fc.get("observations") or [] if _t(o["time"]) >= since]


def _x_range(fc: dict, observations: list[dict]) -> tuple[datetime, datetime]:
    """Earliest drawn measurement (or the issue time) to the forecast's end."""
    start = min([_t(fc["now"])] + [_t(o["time"]) for o in observations])
    end = max(_t(ep["times"][-1]) for ep in fc["endpoints"].values() if ep["times"])
    return start - (end - start) * 0.01, end


def drug_label(fc: dict) -> str | None:
    """Legend label of the drug concentration, None if no ACE inhibitor is given.

    Uses ``fc["regimen"]`` (see ``with_regimen``) if present, else the concentration itself
    (an all but zero median, < 0.001 ng/mL, means none given)."""
    if "regimen" in fc:
        reg = fc["regimen"]
        if not reg or not reg.get("dose_mg"):
            return None
        drug = str(reg.get("drug") or "")
        if drug in ACTIVE:
            return f"{ACTIVE[drug].capitalize()} (active drug) plasma concentration"
        return f"{drug.capitalize()} plasma concentration" if drug else LABELS[
            "diacid_ng_per_ml"][0]
    ep = fc["endpoints"].get("diacid_ng_per_ml")
    if ep is None or max(ep["median"], default=0.0) < 1e-3:
        return None
    return LABELS["diacid_ng_per_ml"][0]


def with_regimen(fc: dict, patient_id: str) -> dict:
    """``fc`` with the patient's current regimen as ``regimen`` ({drug, dose_mg, interval_h}
    or None if untreated); a copy, the cached forecast is left alone."""
    if "regimen" in fc:
        return fc
    r = services.get_patient(patient_id).regimen
    reg = None if r is None else {"drug": r.drug, "dose_mg": r.dose_mg,
                                  "interval_h": r.interval_h}
    return {**fc, "regimen": reg}


def _margins(fig: Figure, top_in: float, bottom_in: float = 0.8, gap_in: float = 0.2,
             left: float = 0.1) -> None:
    """Fixed margins in inches: matplotlib's constrained layout doubles the rendering time."""
    height, rows = fig.get_figheight(), len(fig.axes)
    ax_in = (height - top_in - bottom_in - (rows - 1) * gap_in) / rows
    fig.subplots_adjust(left=left, right=0.96, top=1 - top_in / height,
                        bottom=bottom_in / height, hspace=gap_in / ax_in)


def _figure(kind: str, rows: int) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` axes sharing x (``_legend`` sets the top margin)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHTS[kind]))
    axes = list(fig.subplots(rows, 1, squeeze=False, sharex=True)[:, 0])
    _margins(fig, 0.3)
    for ax in axes:
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
    return fig, axes


def _time_axis(axes: list[Axes], start: datetime, end: datetime) -> None:
    """One time format on the shared x axis, in the ward's zone named in the label."""
    zone = ward_zone()
    ax = axes[-1]
    ax.xaxis.set_major_locator(AutoDateLocator(tz=zone, minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(DateFormatter(TIME_FORMAT, tz=zone))
    ax.set_xlim(start, end)
    ax.set_xlabel(f"Time ({zone.key})", fontsize=FONT)


def _now_line(axes: list[Axes], now: datetime) -> None:
    """A dotted line at the issue time in every axis, labelled 'now' at the top."""
    for ax in axes:
        ax.axvline(now, color=GREY, linestyle=":", linewidth=1.2)
    axes[0].annotate("now", xy=(now, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                     textcoords="offset points", ha="left", va="top", fontsize=FONT,
                     color=GREY)


def _band(ax: Axes, fc: dict, name: str, color: str, label: str,
          linestyle: str = "-") -> Line2D:
    ep = fc["endpoints"][name]
    t = _times(fc, name)
    ax.fill_between(t, ep["lower"], ep["upper"], color=color, alpha=0.18, linewidth=0)
    return ax.plot(t, ep["median"], color=color, label=label, linestyle=linestyle,
                   linewidth=1.8)[0]


def _observed(ax: Axes, observations: list[dict], name: str, color: str) -> bool:
    pts = [(_t(o["time"]), o["value"]) for o in observations if o["code"] == name]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, color=color, zorder=3,
                   edgecolors="white", linewidths=0.6)
    return bool(pts)


def _ylabel(ax: Axes, name: str) -> None:
    ax.set_ylabel(f"{YLABELS.get(name, LABELS[name][0])} ({LABELS[name][1]})", fontsize=FONT)


def _legend(fig: Figure, handles: list, coverage: float, measured: bool,
            title: bool = True) -> None:
    """One legend for the figure, in rows above the axes (never over the data), as many
    rows as its labels need (about 0.068 in a character at 10 pt, 0.55 in an entry)."""
    if handles:
        band = Patch(color=GREY, alpha=0.25, label=f"{round(coverage * 100)}% interval")
        handles = [*handles, band]
    if measured:
        handles.append(Line2D([], [], marker="o", linestyle="", color=GREY, label="measured"))
    width = sum(len(h.get_label()) * 0.068 + 0.55 for h in handles)
    rows = math.ceil(width / (WIDTH_IN - 0.9)) if handles else 0
    _margins(fig, (0.3 if title else 0.1) + 0.28 * rows)
    if handles:
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.09, fig.subplotpars.top),
                   ncols=math.ceil(len(handles) / rows), fontsize=FONT, frameon=False,
                   handlelength=1.6, columnspacing=1.2, borderaxespad=0.1)


def _title(fig: Figure, fc: dict) -> None:
    fig.text(0.01, 0.99, "Forecast: median (line), interval (band)", fontsize=FONT,
             ha="left", va="top")
    fig.text(0.99, 0.99, f"model {fc['model_version']} ({fc['engine']})", fontsize=FONT,
             ha="right", va="top", color=GREY)


def forecast_figure(fc: dict, panel: str) -> Figure:
    """The panel's endpoints: measured points, forecast median and central interval, one
    axis per group of ``PANELS[panel]``, all over the same time range."""
    groups = [[n for n in group if n in fc["endpoints"]] for group in PANELS[panel]]
    groups = [g for g in groups if g] or [[]]
    fig, axes = _figure(panel, len(groups))
    observations = _history(fc)
    untreated = panel == "drug" and drug_label(fc) is None
    handles, measured = [], False
    for ax, group in zip(axes, groups, strict=True):
        if not group:
            ax.set_ylabel("no endpoint (–)", fontsize=FONT)
            continue
        _ylabel(ax, group[0])
        if untreated:
            ax.text(0.5, 0.5, UNTREATED, transform=ax.transAxes, ha="center", va="center",
                    fontsize=FONT + 2, color=GREY)
            ax.set_ylim(0, 100 if LABELS[group[0]][1] == "%" else 1)
            continue
        for name in group:
            label, _, color = LABELS[name]
            if name == "diacid_ng_per_ml":
                label = drug_label(fc) or label
            handles.append(_band(ax, fc, name, color, label))
            measured |= _observed(ax, observations, name, color)
        ax.set_ylim(bottom=0 if LABELS[group[0]][1] != "mmHg" else None)
    _now_line(axes, _t(fc["now"]))
    _time_axis(axes, *_x_range(fc, observations))
    _title(fig, fc)
    _legend(fig, handles, fc["coverage"], measured)
    return fig


def _finish(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=PNG_DPI)
    return buf.getvalue()


def render_forecast(fc: dict, panel: str, fmt: str) -> bytes:
    """``forecast_figure`` as PNG (1440 px wide) or SVG bytes."""
    return _finish(forecast_figure(fc, panel), fmt)


def whatif_figure(result: dict) -> Figure:
    """Systolic (band) and diastolic (dashed median) BP under the current and the proposed
    regimen, measured BP as history if the result carries observations (mmHg)."""
    fig, axes = _figure("whatif", 1)
    ax = axes[0]
    cur = result["current"]
    observations = _history({**cur, "observations": result.get("observations")
                             or cur.get("observations")})
    handles = []
    for key, color in (("current", "#d62728"), ("proposed", "#2ca02c")):
        fc = result[key]
        handles.append(_band(ax, fc, "sbp_mmhg", color, f"Systolic BP, {key} regimen"))
        ep = fc["endpoints"]["dbp_mmhg"]
        handles += ax.plot(_times(fc, "dbp_mmhg"), ep["median"], color=color, linestyle="--",
                           linewidth=1.5, label=f"Diastolic BP, {key} regimen")
    measured = False
    for name in ("sbp_mmhg", "dbp_mmhg"):
        measured |= _observed(ax, observations, name, GREY)
    ax.set_ylabel("BP (mmHg)", fontsize=FONT)
    _now_line(axes, _t(cur["now"]))
    _time_axis(axes, *_x_range(cur, observations))
    handles = [handles[0], handles[2], handles[1], handles[3]]  # systolic first
    _legend(fig, handles, cur["coverage"], measured, title=False)
    return fig


def render_whatif(result: dict, fmt: str = "png") -> bytes:
    """``whatif_figure`` as PNG (1440 px wide) or SVG bytes."""
    return _finish(whatif_figure(result), fmt)


def waveform_figure(wave: dict, title: str | None = None) -> Figure:
    """Arterial pressure (mmHg) over a few beats (s); ``title`` defaults to the wave's
    SBP/DBP and heart rate."""
    fig, axes = _figure("waveform", 1)
    _margins(fig, 0.4, bottom_in=0.6, left=0.11)
    ax = axes[0]
    ax.plot(wave["time_s"], wave["arterial_pressure_mmhg"], color=LABELS["sbp_mmhg"][2],
            linewidth=1.8)
    ax.set_xlabel("Time (s)", fontsize=FONT)
    ax.set_ylabel("Arterial pressure (mmHg)", fontsize=FONT)
    if title is None:
        title = (f"{wave['sbp_mmhg']:.0f}/{wave['dbp_mmhg']:.0f} mmHg, "
                 f"HR {wave['hr_bpm']:.0f} /min")
    ax.set_title(title, fontsize=FONT, loc="left")
    return fig


def render_waveform(wave: dict, fmt: str = "png", title: str | None = None) -> bytes:
    """``waveform_figure`` as PNG (1440 px wide) or SVG bytes."""
    return _finish(waveform_figure(wave, title), fmt)


def forecast_plot(patient_id: str, fmt: str, panel: str, horizon_h: float, coverage: float,
                  engine: str | None, actor: str | None) -> tuple[bytes, str]:
    """The rendered forecast plot (bytes, mimetype), from cache when the inputs are unchanged
    (the key's data version covers the regimen drawn in the drug panel)."""
    key, _ = services.forecast_key(patient_id, horizon_h, coverage, engine, "plot", panel, fmt)
    data, cached = cache.plots().get_or_compute(
        key, lambda: render_forecast(with_regimen(services.forecast(
            patient_id, horizon_h, coverage, engine, actor), patient_id), panel, fmt))
    METRICS.count_cache("plot_hit" if cached else "plot_miss")
    return data, MIMETYPES[fmt]
