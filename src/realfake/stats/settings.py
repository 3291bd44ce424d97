"""How the verdict, breakdowns and baselines are computed: :class:`StatisticsSettings`."""

from __future__ import annotations

from dataclasses import dataclass

from realfake.settings import check_settings, setting
from realfake.stats.corrections import CORRECTIONS


@dataclass(frozen=True)
class StatisticsSettings:
    """How the verdict, breakdowns and baselines are computed."""

    significance: float = setting(
        0.05,
        help="level of every test: the verdict's against 0.5, the minimum detectable AUC's, the flagged bins'",
        exclusive_minimum=0,
        exclusive_maximum=1,
    )
    confidence: float = setting(0.95, help="level of every interval", exclusive_minimum=0, exclusive_maximum=1)
    bootstrap: int = setting(
        1000, help="bootstrap resamples per AUC interval (below 2000 examples; DeLong's from there)", minimum=1
    )
    seed: int = setting(1, help="random seed of the bootstraps and the baselines", minimum=0)
    bins: int = setting(5, help="quantile bins per numeric breakdown", minimum=1)
    correction: str = setting(
        "holm",
        help="multiple-testing correction over all bins of all breakdowns, and over the baselines: holm "
        "(family-wise) or bh (Benjamini-Hochberg, false discovery rate)",
        choices=CORRECTIONS,
    )
    tolerance: float = setting(
        0.01,
        help="the AUC excess over 0.5 that does not matter: the verdict compares the AUC interval with 0.5 + "
        "tolerance (docs/verdict.md)",
        minimum=0,
        exclusive_maximum=0.5,
    )
    power: float = setting(0.8, help="power of the minimum detectable AUC", exclusive_minimum=0, exclusive_maximum=1)
    baseline_rows: int = setting(
        200_000,
        help="at most this many training examples (a seeded sample stratified by class) train the shortcut "
        "baselines; their test scores still cover the whole test split",
        minimum=2,
    )
    mmd_permutations: int = setting(
        200,
        help="permutations (within bricks) of the kernel two-sample test (Gaussian-kernel MMD) on the stamps' "
        "central pixels, a baseline that needs no training; 0 skips it",
        minimum=0,
    )
    mmd_pixels: int = setting(16, help="the MMD test compares the central mmd_pixels x mmd_pixels pixels", minimum=1)
    mmd_examples: int = setting(
        2000,
        help="at most this many examples per class (pairs within bricks, a seeded sample of every split) enter "
        "the MMD test; its cost grows as the square",
        minimum=2,
    )

    def __post_init__(self) -> None:
        check_settings(self)
