"""The patient page's forecast section, which never waits for a fit (issue 14, item 8).

The page shows the current forecast when a cache holds it; otherwise the last one (its plots
served from the shared cache by digest, with its age) or a notice, marked "updating" while
the background warm-up computes the current one; ``live.js`` fetches the section again
(``section``) until it is current. With PREWARM_FORECASTS off there is no background, so the
page computes the forecast itself, as it did before.

The waveform is drawn for the last *measured* BP and HR (no forecast needed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, abort, render_template, request

from app import auth, cache, forecasting, plots, services
from app.errors import ApiError
from app.services import freshness, last_forecast
from app.web import localtime
from app.web import ward as ward_rows

HORIZON_H = 72.0
COVERAGE = 0.9
WAVE_CODES = ("sbp_mmhg", "dbp_mmhg", "hr_bpm")
#: the waveform is drawn for readings no older than this
WAVE_LOOKBACK = timedelta(days=7)


def _compute(patient_id: str) -> tuple[dict | None, str | None]:
    try:
        return services.forecast(patient_id, HORIZON_H, COVERAGE, actor=auth.actor()), None
    except ApiError as exc:
        return None, exc.detail


def forecast_context(patient_id: str, has_observations: bool) -> dict[str, Any]:
    """What ``_forecast_section.html`` needs: ``fc``, ``fc24``, ``fc_error``, ``fc_pending``
    (an older or no forecast shown while the current one is computed), ``fc_age``,
    ``fc_plot`` (digest of an older forecast's plots), ``plot_v``, ``wave``."""
    ctx: dict[str, Any] = {"fc": None, "fc_error": None, "fc_pending": False, "fc_age": None,
                           "fc_digest": None, "plot_v": freshness.plot_version(patient_id),
                           "wave": last_measured(patient_id)}
    if not has_observations:
        ctx["fc_error"] = "No observations yet: enter one below to get a forecast."
    elif not last_forecast.background():
        ctx["fc"], ctx["fc_error"] = _compute(patient_id)
    else:
        try:
            found = last_forecast.last_forecast(patient_id, HORIZON_H, COVERAGE)
        except ApiError as exc:  # no model bundle
            found, ctx["fc_error"] = None, exc.detail
        if found is not None:
            ctx["fc"] = found.forecast
            if not found.current:
                ctx["fc_pending"], ctx["fc_digest"] = True, found.digest
                ctx["fc_age"] = ward_rows.ago(
                    (datetime.now(UTC) - found.issued).total_seconds())
        elif ctx["fc_error"] is None:
            ctx["fc_pending"] = True
    fc = ctx["fc"]
    ctx["fc24"] = {k: ward_rows.at_24h(fc, k) for k in ("sbp_mmhg", "dbp_mmhg")} if fc else {}
    return ctx


def last_measured(patient_id: str) -> dict[str, Any] | None:
    """The newest valid SBP, DBP and HR (values and the time of the newest), or None
    without a BP."""
    since = datetime.now(UTC) - WAVE_LOOKBACK
    obs, _ = services.list_observations(patient_id, since, None, code_in=WAVE_CODES)
    latest = {o.code: o for o in obs}  # time order: the newest wins
    if "sbp_mmhg" not in latest or "dbp_mmhg" not in latest:
        return None
    return {"sbp": latest["sbp_mmhg"].value, "dbp": latest["dbp_mmhg"].value,
            "hr": latest["hr_bpm"].value if "hr_bpm" in latest else None,
            "time": max(o.time for o in latest.values())}


def section(patient_id: str):
    """The forecast section alone (``live.js`` swaps it in once the forecast is current)."""
    try:
        _, total = services.list_observations(patient_id, None, None, limit=0)
    except ApiError:
        abort(404)
    return render_template("_forecast_section.html", patient_id=patient_id,
                           **forecast_context(patient_id, total > 0))


def png_response(data: bytes | None, etag: str, cache_control: str) -> Response:
    """A plot: 304 when ``data`` is None (the browser has it), with its ETag."""
    resp = Response(status=304) if data is None else Response(data, mimetype="image/png")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = cache_control
    return resp


def older_plot(patient_id: str, digest: str, panel: str):
    """A plot of an older forecast the shared cache holds (immutable: the digest fixes it)."""
    if panel not in plots.PANELS or len(digest) != 64:
        abort(404)
    try:
        services.patient_version(patient_id)  # an erased patient's plot is not in memory
    except ApiError:
        abort(404)
    etag = freshness.etag("older", patient_id, digest, panel)
    if etag in request.if_none_match:
        return png_response(None, etag, freshness.IMMUTABLE)
    key = ("older-plot", patient_id, digest, panel, freshness.CODE)
    data = cache.plots().get(key)
    if data is None:
        data = last_forecast.stored_plot(patient_id, digest, panel, freshness.CODE)
    if data is None:  # not drawn by the warm-up (or drawn by an older deploy): draw it
        fc = last_forecast.shared_forecast(patient_id, digest)
        if fc is None:
            abort(404)
        data = plots.render_forecast(fc, panel, "png")
        last_forecast.store_plot(patient_id, digest, panel, freshness.CODE, data)
    cache.plots().put(key, data)
    return png_response(data, etag, freshness.IMMUTABLE)


def waveform_png(patient_id: str):
    """Arterial pressure over a few beats at the last measured SBP, DBP and HR (the twin's
    pulse shape); 404 without a measured BP."""
    wave_in = last_measured(patient_id)
    if wave_in is None:
        abort(404)
    key = ("waveform", patient_id, wave_in["sbp"], wave_in["dbp"], wave_in["hr"],
           wave_in["time"].isoformat())
    etag = freshness.etag(*key)
    if etag in request.if_none_match:
        return png_response(None, etag, freshness.cache_control(patient_id, request.args.get("v")))
    hr = wave_in["hr"] if wave_in["hr"] is not None else 75.0
    wave = forecasting.pressure_waveform(wave_in["sbp"], wave_in["dbp"], hr)
    hr_text = f"HR {wave_in['hr']:.0f} /min" if wave_in["hr"] is not None else "no HR"
    title = (f"Last measured {wave_in['sbp']:.0f}/{wave_in['dbp']:.0f} mmHg, {hr_text}, at "
             f"{localtime.local(wave_in['time'])}")
    return png_response(plots.render_waveform(wave, title=title), etag,
                freshness.cache_control(patient_id, request.args.get("v")))
