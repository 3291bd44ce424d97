"""The fakes of one mock brick: drawn the way the real sample is made, then changed by the named mismatch.

The fakes of ``mismatch="none"`` are drawn the way the real sample is made: an
independent realisation of the same sky is measured with the brick's depth,
passed through the same detection and the same selection on *measured* catalog
values (the model's, :data:`realfake.mock.settings.MODEL_SELECTION`:
``elg_padded`` for galaxies, ``psf_stars`` for stars, from a population richer
in stars), and the *true* parameters of the survivors become
the fakes (with their positions). So the fakes follow the true-parameter
distribution of the real sources that the cutouts stage selects, including
the stars and non-ELG galaxies that scatter into the box, and their positions
follow the same coverage and depth. The selection sees the measured values
as the cutouts stage sees a real source's (:func:`passes_selection`): in the
schema of the mock's release (``MockSettings.release``, converted by the
catalog writer's :func:`realfake.mock.catalogs.release_catalog`), with the
canonical shape columns of the catalog reader (:mod:`realfake.survey.tractor`).
In DR9 and DR10 a COMP of ``fracdev`` below 0.5, written as a SER of Sersic
index below 2.5, can therefore be a fake, as it can be a selected real
source; in DR5 no COMP is either, and the fakes are those of before. Within
an rs dir the fakes keep ``MIN_FAKE_SEPARATION`` pixels apart, so a fake's
stamp holds no other fake (real galaxies have no such extra neighbours).
Other mismatches then change one thing. The brick's files are written by
:mod:`realfake.mock.brick`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from realfake.conventions import STAMP_SIZE
from realfake.errors import RealfakeError
from realfake.mock.catalogs import DR5_SHAPE_COLUMNS, release_catalog
from realfake.mock.layout import BrickGeometry, seed_sequence
from realfake.mock.population import STAR_DENSITY, STAR_RICH_DENSITY, Observing, draw_truth, measure
from realfake.mock.settings import MODEL_SELECTION, MockSettings, effective_strength
from realfake.survey.selection import SELECTION_BANDS, select
from realfake.survey.tractor import detect_release, shape_columns

# Fakes of one rs dir share its images, so a fake's stamp would also show the other fakes near
# it: neighbours that no real galaxy has (100 fakes per 1024^2 rs dir put 0.5 other fakes in
# each 64x64 stamp, and the CNN learned that, the `none` control coming out "distinguishable").
# Within an rs dir fakes are therefore at least this far apart in x or y: half a stamp plus
# the bright part of a fake's profile, so no fake sits in another's stamp.
MIN_FAKE_SEPARATION = 40  # pixels
STAMP_HALF_WIDTH = STAMP_SIZE // 2  # pixels: the edges mismatch keeps fakes this far (x strength) from edges
# Mismatches that change the fakes' true parameters (the others change how they are rendered).
TRUTH_MISMATCHES = ("size", "profile")


def draw_fakes(settings: MockSettings, brick: BrickGeometry, observing: Observing) -> tuple[pd.DataFrame, pd.DataFrame]:
    """True parameters and positions of the brick's fakes (mismatch applied), and their measured values.

    An independent sky realisation over the image is measured, detected and
    selected like the real catalog; the survivors' truths are the fakes. Each
    survivor goes to the first rs dir that has room and no fake within
    ``MIN_FAKE_SEPARATION`` pixels (in x and y) of it, or is dropped; the
    choice depends on position only, never on the fake's properties. Rows
    come in rs dir order, ``fakes_per_rsdir`` per rs dir.

    The measured values (DR5 tractor columns, as :func:`measure` gives them;
    the selection sees them in the release's schema, :func:`passes_selection`)
    stand for obiwan's re-fit of each fake: for ``none`` exactly the values the
    fake was selected on, as a real source's catalog values are the ones it was
    selected on; for ``size`` and ``profile`` the same noise draws applied to
    the changed truth, so the fit sees the change. The mock's measurement has
    no notion of the PSF or of photon noise, so ``psf`` and ``noise`` leave
    the measured values as for ``none``.
    """
    rng = seed_sequence(settings, brick, "fakes")
    strength = effective_strength(settings)
    # Streams of their own, so that at the identity strength the fakes are exactly those of none.
    undetected_rng = seed_sequence(settings, brick, "undetected")
    margin = _coverage_margin(observing) if settings.mismatch == "edges" else None
    wanted = settings.rsdirs * settings.fakes_per_rsdir
    candidates: list[pd.DataFrame] = []
    candidates_measured: list[pd.DataFrame] = []
    members: list[list[int]] = [[] for _ in range(settings.rsdirs)]
    positions = [np.empty((0, 2)) for _ in range(settings.rsdirs)]
    drawn = 0
    for _ in range(200):
        survivors, survivors_measured = _survivors(settings, observing, rng, undetected_rng, margin, strength)
        candidates.append(survivors)
        candidates_measured.append(survivors_measured)
        for index, position in enumerate(survivors[["x", "y"]].to_numpy()):
            for chunk in range(settings.rsdirs):
                if len(members[chunk]) < settings.fakes_per_rsdir and _apart(positions[chunk], position):
                    members[chunk].append(drawn + index)
                    positions[chunk] = np.vstack([positions[chunk], position])
                    break
        drawn += len(survivors)
        if sum(len(chunk) for chunk in members) == wanted:
            break
    else:
        placed = min(len(chunk) for chunk in members)
        raise RealfakeError(
            f"mock brick {brick.name}: {settings.fakes_per_rsdir} fakes per rs dir do not fit in a "
            f"{settings.size}-pixel brick, {MIN_FAKE_SEPARATION} pixels apart: about {placed} do; use "
            f"--fakes-per-rsdir {max(placed, 1)} (mock.fakes_per_rsdir) or fewer, more rs dirs, or a larger --size"
        )
    rows = [row for chunk in members for row in chunk]
    fakes = pd.concat(candidates, ignore_index=True).iloc[rows].reset_index(drop=True)
    measured = pd.concat(candidates_measured, ignore_index=True).iloc[rows].reset_index(drop=True)
    return fakes, measured


def _survivors(
    settings: MockSettings,
    observing: Observing,
    rng: np.random.Generator,
    undetected_rng: np.random.Generator,
    margin: np.ndarray | None,
    strength: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One draw of :func:`draw_fakes`: a sky realisation over the image (from ``rng``), measured, detected and
    selected like the real catalog (``undetected``: plus missed sources, from ``undetected_rng``; ``edges``: only
    sources more than ``strength`` x half a stamp from no coverage, ``margin``), with the mismatch applied;
    the survivors' truths (with ``detected``) and their measured values, both in draw order."""
    pool = draw_truth(rng, settings.size, settings.size, star_density=star_density(settings))
    measure_seed = int(rng.integers(2**63))
    measured, detected = measure(np.random.default_rng(measure_seed), pool, observing, settings.bands)
    selection = MODEL_SELECTION[settings.model]
    keep = detected & passes_selection(measured, settings.release, observing.ebv, selection)
    if settings.mismatch == "undetected":
        # Fakes cut at their input positions whether found or not: sources the measurement misses, drawn
        # from the box on their true values (obiwan draws its fakes' true parameters in it).
        missed = ~detected & passes_selection(_true_catalog(pool), settings.release, observing.ebv, selection)
        keep |= missed & (undetected_rng.random(len(pool)) < strength)
    if margin is not None:
        keep &= _clear_of_edges(pool, margin, strength * STAMP_HALF_WIDTH)
    pool = _apply_mismatch(pool, settings.mismatch, strength).assign(detected=detected)
    if settings.mismatch in TRUTH_MISMATCHES:
        measured, _ = measure(np.random.default_rng(measure_seed), pool, observing, settings.bands)
    survivors = pool[keep].reset_index(drop=True)
    return survivors, measured[keep].reset_index(drop=True)


def star_density(settings: MockSettings) -> float:
    """Stars per arcmin^2 (14 < r < 25) of the mock's population, reals and fakes alike: richer with model stars."""
    return STAR_RICH_DENSITY if settings.model == "stars" else STAR_DENSITY


def passes_selection(catalog: pd.DataFrame, release: str, ebv: float, selection: str = "elg_padded") -> np.ndarray:
    """Boolean mask (len(catalog),): which rows of ``catalog`` (DR5 tractor columns and types, one row per source,
    as :func:`measure` gives them) pass the named ``selection`` as the cutouts stage would select them from the
    mock's catalog of ``release``: in that schema as written (:func:`realfake.mock.catalogs.release_catalog`),
    with the canonical shape columns that :func:`realfake.survey.legacy.read_tractor` adds (the same
    :mod:`realfake.survey.tractor` functions, so the two cannot drift), every row primary. ``ebv``: the brick's
    E(B-V)."""
    view = release_catalog(catalog, release, ebv).assign(brick_primary=True)
    schema = detect_release(view, f"the mock's {release} catalog of a fake realisation").schema
    for name, values in shape_columns(view, SELECTION_BANDS[selection], schema).items():
        view[name] = values.to_numpy()
    return select(view, selection)


def _true_catalog(truth: pd.DataFrame) -> pd.DataFrame:
    """True parameters dressed as a DR5 tractor catalog (noise-free fluxes and shapes; every inverse variance 1),
    for :func:`passes_selection`."""
    view = pd.DataFrame(
        {
            "type": truth["type"].to_numpy(),
            "fracdev": truth["fracdev"].to_numpy(),
            "shapeexp_r": truth["rhalf"].to_numpy(),
            "shapedev_r": np.where(truth["type"] == "DEV", truth["rhalf"], truth["rhalf_dev"]),
            # The selections read a catalog's shapes whole, e1 and e2 too.
            "shapeexp_e1": truth["e1"].to_numpy(),
            "shapeexp_e2": truth["e2"].to_numpy(),
            "shapedev_e1": np.where(truth["type"] == "DEV", truth["e1"], truth["e1_dev"]),
            "shapedev_e2": np.where(truth["type"] == "DEV", truth["e2"], truth["e2_dev"]),
        }
    )
    for band in ("g", "r", "z"):
        view[f"flux_{band}"] = truth[f"flux_dered_{band}"].to_numpy()
        view[f"mw_transmission_{band}"] = 1.0
        view[f"flux_ivar_{band}"] = 1.0
        view[f"nobs_{band}"] = 1
        view[f"psfsize_{band}"] = 2 * truth["rhalf"].to_numpy()
    for name in DR5_SHAPE_COLUMNS:
        if name.endswith("_ivar"):
            view[name] = 1.0
    return view


def _coverage_margin(observing: Observing) -> np.ndarray:
    """Pixels (chessboard) from each pixel to the nearest one without coverage in some band, or the image edge."""
    from scipy.ndimage import distance_transform_cdt

    covered = np.logical_and.reduce([plane > 0 for plane in observing.inverse_variance.values()])
    padded = np.pad(covered, 1, constant_values=False)
    return distance_transform_cdt(padded, metric="chessboard")[1:-1, 1:-1]


def _clear_of_edges(sources: pd.DataFrame, margin: np.ndarray, half_width: float) -> np.ndarray:
    """Whether each source sits more than ``half_width`` pixels from any uncovered pixel or the image edge."""
    height, width = margin.shape
    column = np.clip(np.rint(sources["x"].to_numpy()).astype(int), 0, width - 1)
    row = np.clip(np.rint(sources["y"].to_numpy()).astype(int), 0, height - 1)
    return margin[row, column] > half_width


def _apart(placed: np.ndarray, position: np.ndarray) -> bool:
    """Whether ``position`` (x, y) is at least MIN_FAKE_SEPARATION pixels in x or in y from every placed fake."""
    return not len(placed) or bool(np.abs(placed - position).max(axis=1).min() >= MIN_FAKE_SEPARATION)


def _apply_mismatch(sources: pd.DataFrame, mismatch: str, strength: float | None) -> pd.DataFrame:
    """The true parameters changed by ``mismatch`` at ``strength`` (TRUTH_MISMATCHES; the others act when
    rendering). At the identity strength nothing changes."""
    sources = sources.copy()
    galaxies = sources["rhalf"] > 0
    if mismatch == "size":
        sources.loc[galaxies, "rhalf"] *= strength
        sources.loc[galaxies, "rhalf_dev"] *= strength
    elif mismatch == "profile":
        exponential = galaxies & (sources["sersic_n"] < 2)
        wrong = np.where(exponential[galaxies], 4.0, 1.0)
        index = sources.loc[galaxies, "sersic_n"].to_numpy()
        sources.loc[galaxies, "sersic_n"] = index + strength * (wrong - index)
        # The type a fit finds follows the main profile once it is nearer the other one (a COMP keeps
        # both parts): exponentials (EXP, REX) become DEV, de Vaucouleurs become EXP.
        single = galaxies & (sources["type"] != "COMP")
        crossed = single & ((sources["sersic_n"] > 2.5) == exponential)
        sources.loc[crossed, "type"] = np.where(exponential[crossed], "DEV", "EXP")
    return sources
