"""The mock survey's settings: the named mismatches, their strengths, :class:`MockSettings`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from realfake.conventions import BANDS, INJECTORS, SURVEY_BANDS
from realfake.errors import RealfakeError
from realfake.settings import check_settings, letters_text, parse_letters, setting

MISMATCHES = {
    "none": "fakes drawn from the same population as the selected real sources (negative control)",
    "size": "fake half-light radii times the strength (standard 2; 1 = none)",
    "psf": "fakes convolved with the survey PSF scaled in FWHM by the strength (standard 0: unconvolved, 1.25 for "
    "stars; 1 = none)",
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


# What the mock injects (MockSettings.model), and the named selection (realfake.survey.selection) that picks
# the fakes from an independent realisation; the cutouts stage must select the reals with the same one.
MODELS = ("galaxies", "stars")
MODEL_SELECTION = {"galaxies": "elg_padded", "stars": "psf_stars"}
# Mismatches of a galaxy's shape, which a point source has not: refused with model stars.
GALAXY_MISMATCHES = ("size", "profile")


# The strength a mismatch has when none is given: the mismatches as the controls were first run.
STANDARD_STRENGTH = {
    "size": 2.0, "psf": 0.0, "profile": 1.0, "noise": 1.0, "background": 0.1, "ivar": 1.0, "undetected": 1.0,
    "edges": 1.0,
}  # fmt: skip


# The standard strengths that differ with model stars. psf: a star's image is the PSF, and an unconvolved one
# (strength 0) would be a single pixel, not a subtler PSF error: the fakes' PSF 25% wider in FWHM instead.
STAR_STANDARD_STRENGTH = {"psf": 1.25}


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
MOCK_BANDS = (BANDS, SURVEY_BANDS)  # g, r, z; or DR10's g, r, i, z


# The strengths a mismatch accepts, (lowest, highest); None: no upper bound. psf stops at 4: its FWHM (at most
# 4 x 1.5" = 6", 23 pixels) stays under half a stamp; a fake blurred past that is no test of a PSF difference.
STRENGTH_RANGE = {
    "size": (0.1, None), "psf": (0.0, 4.0), "profile": (0.0, 1.0), "noise": (0.0, 1.0), "background": (0.0, None),
    "ivar": (0.0, 1.0), "undetected": (0.0, 1.0), "edges": (0.0, 2.0),
}  # fmt: skip
# The ranges that differ with model stars: psf from 0.25, a PSF of at least a pixel in FWHM (below, a star's
# fake is a point drawn into a pixel, a delta function rather than a point source).
STAR_STRENGTH_RANGE = {"psf": (0.25, 4.0)}


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
        "unconvolved, 1.25 with model stars; profile: fraction of the way to the wrong Sersic index, standard 1; "
        "noise: fraction of the fakes' own photon noise variance left out, standard 1; background: the rs dirs' sky "
        "offset in units of the per-pixel sky noise, standard 0.1; ivar: fraction of each fake's own photon "
        "variance in the rs dirs' inverse variance, standard 1; undetected: fraction of the undetected fakes kept, "
        "standard 1; edges: how far fakes are kept from uncovered pixels and the image edge, in half stamps, "
        "standard 1); each mismatch's range is realfake.mock.settings.STRENGTH_RANGE (psf 0 to 4, 0.25 to 4 with "
        "model stars, size at least 0.1); the identity value (size and psf 1, the others 0) gives the fakes of "
        "none; none: the mismatch's standard strength",
    )
    model: str = setting(
        "galaxies",
        help="what the fakes are: galaxies (drawn as the elg_padded sample is made) or stars (point sources "
        "drawn as the psf_stars sample is made, from a population richer in stars, "
        "realfake.mock.population.STAR_RICH_DENSITY; select the reals with cutouts selection psf_stars); stars "
        "refuses the size and profile mismatches, and its psf mismatch has standard strength 1.25 and range 0.25 "
        "to 4 (realfake.mock.settings.MODEL_SELECTION)",
        choices=MODELS,
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
    plain_run: bool = setting(
        False,
        help="also write a plain legacypipe run of legacysim into the legacysim tree, "
        "realfake.mock.layout.MOCK_PLAIN_RUN: what a run is with no fakes (the DR5 tree's sky through the runs' "
        "processing, the background mismatch's sky offset included), its coadds, its tractor catalog and an "
        "empty injected catalog; the reals of cutouts --real-source run (needs --injector legacysim)",
    )
    bands: tuple[str, ...] = setting(
        BANDS,
        help="bands rendered: grz, or griz for DR10 with its i band (needs --release dr10); the population is drawn "
        "in all four and selected in g, r, z, so the i band adds images without changing which sources are drawn",
        choices=SURVEY_BANDS,
        parse=parse_letters,
        text=letters_text,
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
            low, high = strength_range(self.mismatch, self.model)
            if not (self.strength >= low and (high is None or self.strength <= high)):
                bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
                which = " with model stars" if self.mismatch in STAR_STRENGTH_RANGE and self.model == "stars" else ""
                raise RealfakeError(f"mismatch {self.mismatch} strength must be {bounds}{which}, got {self.strength}")
        if self.model == "stars" and self.mismatch in GALAXY_MISMATCHES:
            raise RealfakeError(
                f"mismatch {self.mismatch} changes a galaxy's shape, which a point source has not: it needs model "
                f"galaxies, not stars (config mock.mismatch and mock.model; flags --mismatch and --model)"
            )
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
        if self.plain_run and self.injector != "legacysim":
            raise RealfakeError(
                "the mock's plain run is a legacysim run without fakes: --plain-run needs --injector legacysim, not "
                f"{self.injector} (config mock.plain_run and mock.injector)"
            )
        if tuple(self.bands) not in MOCK_BANDS:
            # The population is drawn in all four bands and selected in g, r, z (realfake.mock.population).
            choices = " or ".join("".join(bands) for bands in MOCK_BANDS)
            raise RealfakeError(f"the mock survey renders bands {choices}, in that order; got {''.join(self.bands)}")
        if "i" in self.bands and self.release != "dr10":
            raise RealfakeError(
                f"only DR10 has the i band: bands {''.join(self.bands)} need release dr10, not {self.release} "
                "(config mock.release; flags --bands and --release)"
            )


def strength_range(mismatch: str, model: str) -> tuple[float, float | None]:
    """The strengths ``mismatch`` accepts with ``model``: (lowest, highest), highest None for no upper bound."""
    if model == "stars" and mismatch in STAR_STRENGTH_RANGE:
        return STAR_STRENGTH_RANGE[mismatch]
    return STRENGTH_RANGE[mismatch]


def standard_strength(mismatch: str, model: str) -> float:
    """The strength ``mismatch`` has with ``model`` when none is given."""
    if model == "stars" and mismatch in STAR_STANDARD_STRENGTH:
        return STAR_STANDARD_STRENGTH[mismatch]
    return STANDARD_STRENGTH[mismatch]


def effective_strength(settings: MockSettings) -> float | None:
    """The strength the fakes get: the one given, or the mismatch's standard one (with the settings' model);
    None for ``none``."""
    if settings.mismatch == "none":
        return None
    if settings.strength is None:
        return standard_strength(settings.mismatch, settings.model)
    return float(settings.strength)
