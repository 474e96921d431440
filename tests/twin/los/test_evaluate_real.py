"""The shipped remaining-stay model on the real cohort's test split: clearly better than
always predicting the train median, and its 80 % interval covers about 80 % (slow: the
whole cohort's features and ~25 000 predictions)."""

from __future__ import annotations

import pytest

from tests.twin.los.helpers import LOS
from twin.los.data import design, load_los
from twin.los.evaluate import MedianBaseline, evaluate
from twin.los.model import load_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result() -> dict:
    stays = load_los(LOS)
    test = design([s for s in stays if s.split == "test"])
    train = design([s for s in stays if s.split == "train"])
    return evaluate(test, {"default": load_model(), "median": MedianBaseline(train)})["results"]


def test_beats_the_median_baseline(result):
    default, median = result["default"], result["median"]
    for key in ("24", "all"):
        assert default[key]["n"] == median[key]["n"] > 0
        assert default[key]["mae_h"] <= 0.9 * median[key]["mae_h"], (key, default[key],
                                                                      median[key])


def test_interval_coverage_near_80(result):
    assert 0.75 <= result["default"]["all"]["coverage_80"] <= 0.85
    assert result["default"]["all"]["n"] > 10_000
