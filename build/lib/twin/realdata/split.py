"""The fixed patient-level split of a real cohort: train / calibration / test.

``split_of(stay_id)`` hashes ``str(stay_id)`` with SHA-256 and reads the first 8 bytes as an
unsigned big-endian integer ``u``; ``u / 2**64`` in [0, 0.6) is ``train``, [0.6, 0.8)
``calibration``, [0.8, 1) ``test``. It depends on the stay id only (never on the cohort, the
order of the rows or a random seed), so a stay is in the same split in every cohort directory
(``los``, ``mortality24``, ``sepsis``) and in every run.
"""

from __future__ import annotations

import hashlib

SPLITS: tuple[str, ...] = ("train", "calibration", "test")
BOUNDS: tuple[float, float] = (0.6, 0.8)


def split_fraction(stay_id) -> float:
    """The stay's position in [0, 1): SHA-256 of ``str(stay_id)``, first 8 bytes / 2**64."""
    digest = hashlib.sha256(str(int(stay_id)).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(stay_id) -> str:
    """``"train"`` (~60 %), ``"calibration"`` (~20 %) or ``"test"`` (~20 %)."""
    u = split_fraction(stay_id)
    if u < BOUNDS[0]:
        return "train"
    if u < BOUNDS[1]:
        return "calibration"
    return "test"
