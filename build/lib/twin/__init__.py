"""The patient twin: a PyTorch model of the renin-angiotensin system and blood pressure.

This package knows nothing of the web service: it never imports Flask, SQLAlchemy or
the ``app`` package. The service calls it through the small public API re-exported here.
"""

from twin.drugs import DRUG_NAMES, drug_pk
from twin.parameters import PATIENT_PARAMETERS, ParameterSet, ParamSpec, load_parameters
from twin.scenario import Regimen, Scenario, ScenarioError
from twin.simulate import ENDPOINTS, SimulationResult, simulate
from twin.version import __version__
from twin.waveform import pressure_waveform, waveform

__all__ = [
    "DRUG_NAMES",
    "ENDPOINTS",
    "PATIENT_PARAMETERS",
    "ParamSpec",
    "ParameterSet",
    "Regimen",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "__version__",
    "drug_pk",
    "load_parameters",
    "pressure_waveform",
    "simulate",
    "waveform",
]

# --- forecasting (issue 4): observations -> calibrated patient / forecast with intervals ---
from twin.bundle import BundleError
from twin.forecast.calibrate import CalibratedPatient, calibrate
from twin.forecast.forecaster import Forecaster, load_forecaster
from twin.forecast.observations import Observation, ObservationError
from twin.forecast.result import EndpointForecast, Forecast

__all__ += [
    "BundleError", "CalibratedPatient", "EndpointForecast", "Forecast", "Forecaster",
    "Observation", "ObservationError", "calibrate", "load_forecaster",
]
