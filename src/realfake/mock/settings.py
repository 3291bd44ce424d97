"""The mock survey's settings: the named mismatches, their strengths, :class:`MockSettings`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from realfake.conventions import BANDS, INJECTORS
from realfake.errors import RealfakeError
from realfake.settings import check_settings, setting

MISMATCHES = {
    "none": "fakes drawn from the same population as the selected real sources (negative control)",
    "size": "fake half-light radii times the strength (standard 2; 1 = none)",
    "psf": "fakes convolved with the survey PSF scaled in FWHM by the strength (standard 0: unconvolved; 1 = none)",
    "profile": "Sersic index moved the strength's fraction of the way to the wrong profile, exponential <-> "
    "de Vaucouleurs (standard 1: swapped; 0 = none)",
    "noise": "the strength's fraction of the variance of the fakes' own photon noise left out (obiwan add_sim_noise; "
    "standard 1: all; 0 = none)",
    "background": "the rs dirs' sky offset from the DR5 coadds' by the strength times the per-pixel sky noise "
    "(another processing run's sky subtraction; standard 0.1; 0 = none)",
    "ivar": "the rs dirs' inverse variance includes the strength's fraction of each fake's own photon variance "
    "(obiwan's get_srcimg_invvar; standard 1; 0 = none)",
    "undetected": "the fakes include the strength's fraction of those the measurement would not detect, with no "
    "re-fit in their rs dir (reals are all detections; standard 1; 0 = none)",
    "edges": "fakes are never placed within the strength times half a stamp of a chip gap, an uncovered region or "
    "the image edge (obiwan's whole-stamp-on-the-CCD rule; standard 1; 0 = none)",
}


# The strength a mismatch has when none is given: the mismatches as the controls were first run.
STANDARD_STRENGTH = {
    "size": 2.0, "psf": 0.0, "profile": 1.0, "noise": 1.0, "background": 0.1, "ivar": 1.0, "undetected": 1.0,
    "edges": 1.0,
}  # fmt: skip


# The strength at which a mismatch changes nothing: its fakes are those of "none".
IDENTITY_STRENGTH = {
    "size": 1.0, "psf": 1.0, "profile": 0.0, "noise": 0.0, "background": 0.0, "ivar": 0.0, "undetected": 0.0,
    "edges": 0.0,
}  # fmt: skip


# Mismatches of the processing, not of the galaxies: what the shortcut audit and the same-image control are for.
PROCESSING_MISMATCHES = ("background", "ivar", "undetected", "edges")


# The Legacy Surveys releases whose tractor catalog schema the mock can write (realfake.mock.catalogs): DR5 as
# measured, or legacypipe's DR9 (DECam south) and DR10 columns, types, maskbits and DUP rows.
RELEASES = ("dr5", "dr9", "dr10")
# The releases whose catalogs legacysim writes: it runs legacypipe DR9.6.9 (../shared/FORMATS.md section 2).
LEGACYSIM_RELEASES = ("dr9", "dr10")


# The strengths a mismatch accepts, (lowest, highest); None: no upper bound. psf stops at 4: its FWHM (at most
# 4 x 1.5" = 6", 23 pixels) stays under half a stamp; a fake blurred past that is no test of a PSF difference.
STRENGTH_RANGE = {
    "size": (0.1, None), "psf": (0.0, 4.0), "profile": (0.0, 1.0), "noise": (0.0, 1.0), "background": (0.0, None),
    "ivar": (0.0, 1.0), "undetected": (0.0, 1.0), "edges": (0.0, 2.0),
}  # fmt: skip


@dataclass(frozen=True)
class MockSettings:
    """What mock survey to write. Brick k's content depends only on (seed, brick), not on ``bricks``."""

    out: Path = setting(help="output directory")
    bricks: int = setting(12, help="number of bricks", minimum=1)
    size: int = setting(
        836, help="pixels per side of each brick (DR5 bricks are 3600)", minimum=128, maximum=4096, unit="pixels"
    )
    seed: int = setting(1, help="random seed; the same seed gives the same survey", minimum=0)
    mismatch: str = setting(
        "none",
        help="how the fakes differ from the real population: none, of the galaxies size, psf, profile or noise, of "
        "the processing background, ivar, undetected or edges (realfake.mock.settings.MISMATCHES)",
        choices=tuple(MISMATCHES),
    )
    strength: float | None = setting(
        None,
        help="how strong the mismatch is (size: radius factor, standard 2; psf: PSF FWHM factor, standard 0 = "
        "unconvolved; profile: fraction of the way to the wrong Sersic index, standard 1; noise: fraction of the "
        "fakes' own photon noise variance left out, standard 1; background: the rs dirs' sky offset in units of "
        "the per-pixel sky noise, standard 0.1; ivar: fraction of each fake's own photon variance in the rs dirs' "
        "inverse variance, standard 1; undetected: fraction of the undetected fakes kept, standard 1; edges: how "
        "far fakes are kept from uncovered pixels and the image edge, in half stamps, standard 1); each "
        "mismatch's range is realfake.mock.settings.STRENGTH_RANGE (psf 0 to 4, size at least 0.1); the identity "
        "value (size and psf 1, the others 0) gives the fakes of none; none: the mismatch's standard strength",
    )
    rsdirs: int = setting(2, help="obiwan rs dirs per brick", minimum=1)
    fakes_per_rsdir: int = setting(50, help="fakes injected in each rs dir", minimum=1)
    release: str = setting(
        "dr5",
        help="the schema of every tractor catalog written (the DR5 tree's and each rs dir's): dr5, or legacypipe's "
        "dr9 (release 9010, int16 maskbits) or dr10 (release 10000, int32 maskbits, i-band columns), with "
        "3-character types, COMP written as SER and a few Gaia DUP rows (realfake.mock.catalogs); the fakes are "
        "selected in that schema, as the reals are (from dr9 on a COMP of fracdev below 0.5 can be one), and the "
        "DR5 tree's images are the same whatever the release",
        choices=RELEASES,
    )
    injector: str = setting(
        "obiwan",
        help="the layout of the fakes' tree: obiwan (obiwan/, rs<N> dirs below each brick, simcats with 1-indexed "
        "x, y) or legacysim (file0_rs<N>_skip0 run dirs at the top of legacysim/, injected catalogs with 0-indexed "
        "bx, by and a few collided rows that are not rendered; needs --release dr9 or dr10); the pixels are the "
        "same either way",
        choices=INJECTORS,
    )
    manifest: bool = setting(
        False,
        help="also write the survey as a Rubin source_injection export would be (docs/manifest.md): per brick "
        "ExposureF-style FITS files in nJy of the DR5 and obiwan pixels, catalogs in tract-like x, y, and "
        "manifest/run.yaml naming them (realfake.mock.manifest; needs --injector obiwan)",
    )
    bands: tuple[str, ...] = setting(
        BANDS,
        help="bands rendered: all of g, r, z (no flag: the mock's population is drawn and selected in all three)",
        choices=BANDS,
        command_line=False,
    )

    def __post_init__(self) -> None:
        check_settings(self, describe="mock setting {}".format)
        if self.strength is not None:
            if self.mismatch == "none":
                named = [name for name in MISMATCHES if name != "none"]
                raise RealfakeError(
                    f"a mismatch strength needs a named mismatch ({', '.join(named[:-1])} or {named[-1]}), not none"
                )
            if not math.isfinite(self.strength):
                raise RealfakeError(f"mismatch {self.mismatch} strength must be a finite number, got {self.strength}")
            low, high = STRENGTH_RANGE[self.mismatch]
            if not (self.strength >= low and (high is None or self.strength <= high)):
                bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
                raise RealfakeError(f"mismatch {self.mismatch} strength must be {bounds}, got {self.strength}")
        if self.injector == "legacysim" and self.release not in LEGACYSIM_RELEASES:
            raise RealfakeError(
                f"injector legacysim writes legacypipe DR9.6.9's catalogs: it needs release "
                f"{' or '.join(LEGACYSIM_RELEASES)}, not {self.release} (config mock.injector and mock.release; "
                "flags --injector and --release)"
            )
        if self.manifest and self.injector != "obiwan":
            raise RealfakeError(
                "the mock's manifest tree is written from its obiwan tree: --manifest needs --injector obiwan "
                "(config mock.manifest and mock.injector)"
            )
        if tuple(self.bands) != BANDS:
            # The population is drawn and selected in all three bands (realfake.mock.population).
            raise RealfakeError(
                f"the mock survey renders all of {', '.join(BANDS)}, in that order; got {list(self.bands)}"
            )


def effective_strength(settings: MockSettings) -> float | None:
    """The strength the fakes get: the one given, or the mismatch's standard one; None for ``none``."""
    if settings.mismatch == "none":
        return None
    return STANDARD_STRENGTH[settings.mismatch] if settings.strength is None else float(settings.strength)
