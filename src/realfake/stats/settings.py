"""How the verdict, breakdowns and baselines are computed: :class:`StatisticsSettings`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from realfake.errors import RealfakeError
from realfake.stats.corrections import CORRECTIONS


@dataclass(frozen=True)
class StatisticsSettings:
    """How the verdict, breakdowns and baselines are computed.

    ``significance``: the level of every test; ``confidence``: of every
    interval; ``bootstrap``: resamples per AUC interval; ``seed``: of the
    bootstraps and the baselines; ``bins``: quantile bins per numeric
    breakdown; ``correction``: ``holm`` (family-wise) or ``bh`` (false discovery
    rate) over all bins of all breakdowns, and over the baselines;
    ``tolerance``: the AUC excess over 0.5 that does not matter
    (:func:`realfake.stats.auc.tolerance_outcome`); ``power``: of the minimum detectable AUC;
    ``baseline_rows``: at most this many training examples (a seeded sample,
    stratified by class) train the shortcut baselines, whose test scores still
    cover the whole test split.
    """

    significance: float = 0.05
    confidence: float = 0.95
    bootstrap: int = 1000
    seed: int = 1
    bins: int = 5
    correction: str = "holm"
    tolerance: float = 0.01
    power: float = 0.8
    baseline_rows: int = 200_000

    def __post_init__(self) -> None:
        for name in ("significance", "confidence", "tolerance", "power"):
            if not math.isfinite(getattr(self, name)):
                raise RealfakeError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.baseline_rows < 2:
            raise RealfakeError(f"baseline_rows must be at least 2, got {self.baseline_rows}")
        if not 0 < self.significance < 1:
            raise RealfakeError(f"significance must be between 0 and 1, got {self.significance}")
        if not 0 < self.confidence < 1:
            raise RealfakeError(f"confidence must be between 0 and 1, got {self.confidence}")
        if self.bootstrap < 1:
            raise RealfakeError(f"bootstrap resamples must be at least 1, got {self.bootstrap}")
        if self.bins < 1:
            raise RealfakeError(f"bins must be at least 1, got {self.bins}")
        if self.correction not in CORRECTIONS:
            raise RealfakeError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 <= self.tolerance < 0.5:
            raise RealfakeError(f"tolerance must be at least 0 and below 0.5 (an AUC excess), got {self.tolerance}")
        if not 0 < self.power < 1:
            raise RealfakeError(f"power must be between 0 and 1, got {self.power}")
