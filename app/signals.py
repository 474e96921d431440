"""Events the services send and the background jobs subscribe to (blinker, shipped by Flask).

The services do not know who listens: ``app.prewarm`` connects to ``patient_changed`` in its
``init_app``, so the business layer never imports the warm-up (nor the plots it renders).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: sent with ``patient_id=`` (sender: the Flask app) after a patient's data changed
patient_changed = _signals.signal("patient-changed")
#: sent with ``patient_id=`` and ``forecast=`` (the forecast body, 90 % intervals) by the
#: warm-up after it computed a patient's forecast; ``app.alerts`` evaluates its forecast
#: rules on it, so the forecast is computed once
forecast_ready = _signals.signal("forecast-ready")
