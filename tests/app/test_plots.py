"""Readable plots (issue 14, point 6): clinical labels with units, a labelled 'now' line, one
local-time axis naming the ward's zone, one axis per scale, the same x range (history to the
forecast's end) in every axis, no band for an undosed drug, PNGs at 2x (1440 px wide)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.dates import date2num

from app import plots, services
from app.schemas import PatientIn, RegimenIn

ZONE = "Europe/Berlin"


def _ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


@pytest.fixture
def ward(model_app, monkeypatch):
    """The model app in a Berlin ward, inside an app context."""
    monkeypatch.setitem(model_app.config, "WARD_TIMEZONE", ZONE)
    with model_app.app_context():
        yield model_app


def _patient(treated: bool) -> str:
    pid = services.admit_patient(PatientIn(age=60, renal_function="normal")).id
    obs = []
    for hours, sbp in ((20, 165), (10, 158), (3, 150)):
        t = _ago(hours).isoformat()
        obs += [{"time": t, "code": "sbp_mmhg", "value": sbp, "unit": "mm[Hg]"},
                {"time": t, "code": "dbp_mmhg", "value": 90, "unit": "mm[Hg]"},
                {"time": t, "code": "hr_bpm", "value": 80, "unit": "/min"}]
    services.record_observations(pid, obs)
    if treated:
        services.set_regimen(pid, RegimenIn(drug="benazepril", dose_mg=10, interval_h=24,
                                            start=_ago(12)), confirm=True)
    return pid


def _forecast(treated: bool) -> dict:
    pid = _patient(treated)
    return plots.with_regimen(services.forecast(pid), pid)


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", data[16:20])[0]


def test_bp_panel_has_clinical_labels_units_now_and_ward_time(ward):
    fc = _forecast(treated=False)
    fig = plots.forecast_figure(fc, "bp")
    labels = _legend_texts(fig)
    assert "Systolic BP" in labels and "Diastolic BP" in labels and "measured" in labels
    assert not [t for t in labels if "_" in t or "[" in t], labels
    assert all("(" in ax.get_ylabel() and ax.get_ylabel().endswith(")") for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "BP (mmHg)"
    assert "now" in _texts(fig)
    ax = fig.axes[-1]
    assert ax.get_xlabel() == f"Time ({ZONE})"
    now = datetime.fromisoformat(fc["now"])
    tick = ax.xaxis.get_major_formatter()(date2num(now))
    assert tick == now.astimezone(ZoneInfo(ZONE)).strftime(plots.TIME_FORMAT)
    assert tick != now.astimezone(UTC).strftime(plots.TIME_FORMAT)  # Berlin is never UTC


def test_every_panel_has_its_own_scales_and_one_x_range_from_history(ward):
    fc = _forecast(treated=True)
    first = min(datetime.fromisoformat(o["time"]) for o in fc["observations"])
    end = datetime.fromisoformat(fc["endpoints"]["sbp_mmhg"]["times"][-1])
    ranges = set()
    for panel, groups in plots.PANELS.items():
        fig = plots.forecast_figure(fc, panel)
        assert len(fig.axes) == len(groups)
        for ax in fig.axes:
            assert ax.get_ylabel().endswith(")") and "(" in ax.get_ylabel(), panel
            ranges.add(ax.get_xlim())
        assert "now" in _texts(fig)
    assert len(plots.PANELS["ras"]) == 3
    assert len(ranges) == 1  # every axis of every panel: the same time range
    lo, hi = ranges.pop()
    assert lo < date2num(first) and hi == pytest.approx(date2num(end))
    ras = plots.forecast_figure(fc, "ras")
    assert [ax.get_ylabel() for ax in ras.axes] == ["Ang II (pg/mL)", "Ang I (pg/mL)",
                                                     "PRA (ng/mL/h)"]
    assert {"Angiotensin II", "Angiotensin I", "Plasma renin activity"} <= set(
        _legend_texts(ras))


def test_an_untreated_patient_has_no_drug_band_but_says_so(ward):
    fig = plots.forecast_figure(_forecast(treated=False), "drug")
    for ax in fig.axes:
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert plots.UNTREATED in [t.get_text() for t in ax.texts]
        assert "(" in ax.get_ylabel()


def test_a_treated_patient_has_the_drug_band_named_by_the_drug(ward):
    fig = plots.forecast_figure(_forecast(treated=True), "drug")
    for ax in fig.axes:
        assert [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert plots.UNTREATED not in _texts(fig)
    labels = _legend_texts(fig)
    assert "Benazeprilat (active drug) plasma concentration" in labels
    assert "ACE inhibition" in labels and "90% interval" in labels


def test_drug_label_without_a_regimen_looks_at_the_concentration():
    flat = {"endpoints": {"diacid_ng_per_ml": {"median": [0.0, 1e-6]}}}
    dosed = {"endpoints": {"diacid_ng_per_ml": {"median": [0.0, 4.2]}}}
    assert plots.drug_label(flat) is None
    assert plots.drug_label(dosed) == plots.LABELS["diacid_ng_per_ml"][0]
    assert plots.drug_label({**dosed, "regimen": None}) is None
    assert plots.drug_label({**dosed, "regimen": {"drug": "lisinopril", "dose_mg": 10}}) == (
        "Lisinopril plasma concentration")
    assert plots.drug_label({**dosed, "regimen": {"drug": "ramipril", "dose_mg": 0}}) is None


def test_pngs_are_rendered_at_twice_the_displayed_width(ward):
    fc = _forecast(treated=True)
    for panel in plots.PANELS:
        assert _png_width(plots.render_forecast(fc, panel, "png")) == 1440
    assert plots.render_forecast(fc, "bp", "svg").lstrip().startswith(b"<?xml")


def test_the_plot_url_draws_the_patients_regimen(model_app, log_in, monkeypatch):
    client, _ = log_in(model_app)
    with model_app.app_context():
        treated, untreated = _patient(treated=True), _patient(treated=False)
    seen = {}
    render = plots.render_forecast

    def spy(fc, panel, fmt):
        seen[fc["patient_id"]] = fc["regimen"]
        return render(fc, panel, fmt)

    monkeypatch.setattr(plots, "render_forecast", spy)
    for pid in (treated, untreated):
        resp = client.get(f"/api/v1/patients/{pid}/forecast.png?panel=drug")
        assert resp.status_code == 200 and _png_width(resp.data) == 1440
    assert seen[treated]["drug"] == "benazepril" and seen[untreated] is None


def test_whatif_plot_labels_both_regimens_and_shows_history(ward):
    pid = _patient(treated=False)
    result = services.what_if(pid, RegimenIn(drug="benazepril", dose_mg=10, interval_h=24,
                                             start=_ago(0.5)))
    fig = plots.whatif_figure(result)
    labels = _legend_texts(fig)
    for key in ("current", "proposed"):
        assert f"Systolic BP, {key} regimen" in labels
        assert f"Diastolic BP, {key} regimen" in labels
    assert "measured" not in labels  # no observations in the result: none drawn
    ax = fig.axes[0]
    assert ax.get_ylabel() == "BP (mmHg)" and ax.get_xlabel() == f"Time ({ZONE})"
    assert "now" in _texts(fig)
    obs = services.forecast(pid)["observations"]
    fig = plots.whatif_figure({**result, "observations": obs})
    assert "measured" in _legend_texts(fig)
    assert [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert fig.axes[0].get_xlim()[0] < date2num(datetime.fromisoformat(obs[0]["time"]))
    assert _png_width(plots.render_whatif(result)) == 1440


def test_waveform_has_units_and_takes_a_title():
    wave = {"time_s": [0.0, 0.5, 1.0], "arterial_pressure_mmhg": [80.0, 120.0, 80.0],
            "sbp_mmhg": 120.0, "dbp_mmhg": 80.0, "hr_bpm": 72.0}
    fig = plots.waveform_figure(wave)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == "Arterial pressure (mmHg)"
    assert ax.get_title(loc="left") == "120/80 mmHg, HR 72 /min"
    title = "Last measured 118/70 mmHg, HR 104 /min at 14:30 (Europe/Berlin)"
    assert plots.waveform_figure(wave, title).axes[0].get_title(loc="left") == title
    assert _png_width(plots.render_waveform(wave, title=title)) == 1440


def test_fonts_stay_legible_at_the_displayed_size(ward):
    fig = plots.forecast_figure(_forecast(treated=True), "ras")
    texts = [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label, *ax.texts,
                                            *ax.get_xticklabels(), *ax.get_yticklabels())]
    texts += [t for lg in fig.legends for t in lg.get_texts()] + list(fig.texts)
    shown = 720 / (fig.get_figwidth() * 72)  # displayed px per pt: the page shows 720 px
    assert min(t.get_fontsize() for t in texts) * shown * 0.75 >= 9  # CSS pt = 4/3 px


def test_outside_an_app_context_the_axis_is_utc():
    fc = {"now": "2026-01-01T12:00:00+00:00", "coverage": 0.9, "model_version": "m",
          "engine": "e", "endpoints": {name: {
              "unit": "mm[Hg]", "times": ["2026-01-01T12:00:00+00:00",
                                          "2026-01-02T12:00:00+00:00"],
              "median": [120.0, 118.0], "lower": [110.0, 105.0], "upper": [130.0, 131.0]}
              for name in ("sbp_mmhg", "dbp_mmhg")}}
    assert plots.forecast_figure(fc, "bp").axes[0].get_xlabel() == "Time (UTC)"
