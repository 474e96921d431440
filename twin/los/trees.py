"""Gradient-boosted regression trees as plain arrays, evaluated with numpy.

The remaining-stay model is fitted with LightGBM (a development dependency) and shipped as
the trees' arrays, so the service needs neither LightGBM nor its OpenMP runtime. The
evaluator reproduces LightGBM's numerical splits exactly (``decision_type`` "<="): a value
goes left when ``x <= threshold``; a missing value (NaN, or NaN and zero for
``missing_type`` "Zero") goes the node's default way; for ``missing_type`` "None" a NaN is
read as 0. A prediction is the sum of every tree's leaf (LightGBM folds the initial score into
the first tree). ``tests/twin/los/test_trees.py`` holds it equal to ``Booster.predict``.

All the trees are packed into one node table; each leaf points to itself, so evaluating
every tree for a batch of rows is ``depth`` vectorised steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class TreeEnsemble:
    """Packed trees: per node its feature, threshold, children, default direction, missing
    type (0 None, 1 Zero, 2 NaN) and value (leaves only); ``roots`` index each tree."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    missing: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int

    def predict(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Sum of the trees for each row of ``x`` (rows x features, NaN = missing)."""
        x = np.atleast_2d(np.asarray(x, float))
        return np.concatenate([self._predict(x[i:i + chunk])
                               for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            v = x[rows, self.feature[node]]
            nan = np.isnan(v)
            mt = self.missing[node]
            miss = (nan & (mt == 2)) | ((nan | (np.abs(v) <= _ZERO)) & (mt == 1))
            v = np.where(nan & (mt == 0), 0.0, v)
            go_left = np.where(miss, self.default_left[node], v <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return self.value[node].sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready arrays (floats as repr-exact Python floats)."""
        return {"feature": self.feature.tolist(), "threshold": self.threshold.tolist(),
                "left": self.left.tolist(), "right": self.right.tolist(),
                "default_left": self.default_left.astype(int).tolist(),
                "missing": self.missing.tolist(), "value": self.value.tolist(),
                "roots": self.roots.tolist(), "depth": self.depth}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TreeEnsemble:
        """The inverse of :meth:`to_dict`; raises ValueError on inconsistent arrays."""
        arr = {k: np.asarray(d[k]) for k in ("feature", "threshold", "left", "right",
                                               "default_left", "missing", "value", "roots")}
        n = len(arr["feature"])
        if any(len(arr[k]) != n for k in arr if k != "roots"):
            raise ValueError("tree arrays differ in length")
        for k in ("left", "right", "roots"):
            if len(arr[k]) and (arr[k].min() < 0 or arr[k].max() >= n):
                raise ValueError(f"tree {k} index out of range")
        return cls(arr["feature"].astype(np.int64), arr["threshold"].astype(float),
                   arr["left"].astype(np.int64), arr["right"].astype(np.int64),
                   arr["default_left"].astype(bool), arr["missing"].astype(np.int8),
                   arr["value"].astype(float), arr["roots"].astype(np.int64), int(d["depth"]))


def from_lightgbm_dump(dump: dict[str, Any]) -> TreeEnsemble:
    """Pack the trees of ``Booster.dump_model()``; raises ValueError on a categorical split."""
    nodes: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right",
                                               "default_left", "missing", "value")}
    roots, depth = [], 0

    def add(tree: dict[str, Any], level: int) -> int:
        nonlocal depth
        i = len(nodes["feature"])
        for k, v in zip(nodes, (0, np.inf, i, i, True, 0, 0.0), strict=True):
            nodes[k].append(v)
        if "leaf_value" in tree:
            nodes["value"][i] = float(tree["leaf_value"])
            depth = max(depth, level)
            return i
        if tree.get("decision_type") != "<=":
            raise ValueError(f"unsupported split {tree.get('decision_type')!r}")
        nodes["feature"][i] = int(tree["split_feature"])
        nodes["threshold"][i] = float(tree["threshold"])
        nodes["default_left"][i] = bool(tree["default_left"])
        nodes["missing"][i] = _MISSING[tree.get("missing_type", "None")]
        nodes["left"][i] = add(tree["left_child"], level + 1)
        nodes["right"][i] = add(tree["right_child"], level + 1)
        return i

    for info in dump["tree_info"]:
        roots.append(add(info["tree_structure"], 0))
    return TreeEnsemble(np.asarray(nodes["feature"], np.int64),
                        np.asarray(nodes["threshold"], float),
                        np.asarray(nodes["left"], np.int64), np.asarray(nodes["right"], np.int64),
                        np.asarray(nodes["default_left"], bool),
                        np.asarray(nodes["missing"], np.int8), np.asarray(nodes["value"], float),
                        np.asarray(roots, np.int64), depth)
