"""Hybrid forecast: a mechanistic trajectory plus the per-patient state-space discrepancy.

``HybridForecaster(params, mechanistic)`` keeps the mechanistic model for what it knows (the
drug, the RAS, the response to a regimen or a what-if): ``mechanistic(endpoint, times)`` returns
the model's trajectory (natural units) at the given hours, or ``None`` for "no mechanistic
prediction" (pure state space). The discrepancy ``y - mechanistic`` is filtered by the
state-space model of :mod:`twin.forecast.state_space` (its population mean ``mu0`` replaced by
0, i.e. the prior is "the model is right on average", unless ``mechanistic`` is None), so the
forecast starts from where the patient is now and relaxes only as fast as the learnt dynamics
say. A what-if changes ``mechanistic`` and hence the forecast by the mechanistic effect.
Intervals are ``mu +- q * sd`` with the split-conformal ``q`` of the shipped tables.
Cost: O(1) per reading (``observe``) and per forecast; nothing re-simulates the stay.

Note: the shipped parameters were fitted on the raw vital signs (mechanistic = None); a
discrepancy fit against a specific mechanistic bundle is future work (docs/realdata.md).
"""

from __future__ import annotations

from dataclasses import replace

from twin.forecast.state_space import PatientFilter, SSParams


class HybridForecaster:
    def __init__(self, params: dict, mechanistic=None, conformal: dict | None = None):
        self.mechanistic = mechanistic
        self.conformal = conformal or {}
        self.filters: dict[str, PatientFilter] = {}
        self.params = {}
        for ep, p in params.items():
            sp = SSParams(**p)
            self.params[ep] = sp if mechanistic is None else replace(sp, mu0=0.0)

    def _mech(self, ep, t):
        if self.mechanistic is None:
            return 0.0
        m = self.mechanistic(ep, [t])
        return 0.0 if m is None else float(m[0])

    def observe(self, endpoint: str, t: float, y: float) -> None:
        f = self.filters.setdefault(endpoint, PatientFilter(self.params[endpoint], t0=t))
        f.update(t, y - self._mech(endpoint, t))

    def forecast(self, endpoint: str, h: float, level: float = 0.9) -> dict:
        f = self.filters.get(endpoint) or PatientFilter(self.params[endpoint])
        d_mu, sd = f.forecast(h)
        mu = d_mu + self._mech(endpoint, f.t + h)
        q = (self.conformal.get(endpoint, {}).get(str(int(h)), {}).get(str(level)))
        if q is None:
            from statistics import NormalDist
            q = NormalDist().inv_cdf(0.5 + level / 2)
        return {"t": f.t + h, "median": mu, "sd": sd, "lo": mu - q * sd, "hi": mu + q * sd,
                "level": level, "interval": "next measured reading"}
