"""Remaining ICU length of stay: features from the hourly history, quantile trees with a
conformal interval (:mod:`twin.los.model`), fitted and scored on real ICU stays."""

from twin.los.features import FEATURES, stay_features
from twin.los.model import LosEstimate, LosModel, load_model

__all__ = ["FEATURES", "LosEstimate", "LosModel", "load_model", "stay_features"]
