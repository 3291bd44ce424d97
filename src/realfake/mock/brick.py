"""Generating one mock brick: the DR5 side (scene, coadds, tractor) and the obiwan side (fakes, rs dirs).

The fakes of ``mismatch="none"`` are drawn the way the real sample is made: an
independent realisation of the same sky is measured with the brick's depth,
passed through the same detection and the same ``elg_padded`` selection on
*measured* catalog values, and the *true* parameters of the survivors become
the fakes (with their positions). So the fakes follow the true-parameter
distribution of the real sources that the cutouts stage selects, including the
stars and non-ELG galaxies that scatter into the box, and their positions
follow the same coverage and depth. Within an rs dir the fakes keep
``MIN_FAKE_SEPARATION`` pixels apart, so a fake's stamp holds no other fake
(real galaxies have no such extra neighbours). Other mismatches then change
one thing.

The rendering, the population and the file formats are
:mod:`realfake.mock.render`, :mod:`realfake.mock.population` and
:mod:`realfake.mock.files`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from realfake import paths
from realfake.conventions import STAMP_SIZE, brick_directory
from realfake.errors import RealfakeError
from realfake.mock.files import write_compressed_image, write_table, write_text
from realfake.mock.layout import BrickGeometry, mock_rsdir_names, seed_sequence
from realfake.mock.population import EXTINCTION_COEFFICIENTS, PIXEL_SCALE, Observing, draw_truth, measure
from realfake.mock.render import (
    SINGLE_EXPOSURE_SIGMA,
    SKY_PER_PIXEL,
    coverage,
    photon_noise,
    psf_fwhm_for_brick,
    render_sources,
    sky_noise,
)
from realfake.mock.settings import MockSettings, effective_strength
from realfake.survey.selection import select

SCENE_MARGIN = 40  # pixels: sources just outside the image still spill light into it
FAKE_SELECTION = "elg_padded"
RELEASE = 5000
PIXEL_DEPTH_SCATTER = 0.02
# Fakes of one rs dir share its images, so a fake's stamp would also show the other fakes near
# it: neighbours that no real galaxy has (100 fakes per 1024^2 rs dir put 0.5 other fakes in
# each 64x64 stamp, and the CNN learned that, the `none` control coming out "distinguishable").
# Within an rs dir fakes are therefore at least this far apart in x or y: half a stamp plus
# the bright part of a fake's profile, so no fake sits in another's stamp.
MIN_FAKE_SEPARATION = 40  # pixels
STAMP_HALF_WIDTH = STAMP_SIZE // 2  # pixels: the edges mismatch keeps fakes this far (x strength) from edges
# Mismatches that change the fakes' true parameters (the others change how they are rendered).
TRUTH_MISMATCHES = ("size", "profile")


def coadd_header(settings: MockSettings, brick: BrickGeometry, band: str) -> fits.Header:
    """DR5-like coadd header: brick keywords and a TAN WCS with CD matrix, north up, east left."""
    header = fits.Header()
    header["BRICKNAM"] = (brick.name, "LegacySurvey brick RRRr[pm]DDd")
    header["BRICKID"] = (brick.brickid, "LegacySurvey brick id")
    header["RAMIN"], header["RAMAX"] = brick.ra1, brick.ra2
    header["DECMIN"], header["DECMAX"] = brick.dec1, brick.dec2
    header["BRICKRA"], header["BRICKDEC"] = brick.ra, brick.dec
    header["BAND"] = (band, "filter")
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = brick.ra, brick.dec
    header["CRPIX1"] = header["CRPIX2"] = settings.size / 2 + 0.5
    header["CD1_1"], header["CD1_2"] = -PIXEL_SCALE / 3600, 0.0
    header["CD2_1"], header["CD2_2"] = 0.0, PIXEL_SCALE / 3600
    header["IMAGEW"] = header["IMAGEH"] = settings.size
    header["MOCK"] = (True, "realfake mock survey")
    header["MOCKSEED"] = (settings.seed, "realfake mock seed")
    return header


def brick_wcs(settings: MockSettings, brick: BrickGeometry) -> WCS:
    return WCS(coadd_header(settings, brick, settings.bands[0]))


def write_brick_table(settings: MockSettings, bricks: list[BrickGeometry]) -> None:
    """``dr5/survey-bricks.fits`` (DR5 columns) and ``bricks.txt``."""

    def column(fits_format: str, attribute: str) -> tuple[str, np.ndarray]:
        return fits_format, np.array([getattr(brick, attribute) for brick in bricks])

    write_table(
        Path(paths.dr5_file(settings.out / "dr5", "brick_table")),
        {
            "brickname": column("8A", "name"),
            "brickid": column("J", "brickid"),
            "brickq": ("I", np.zeros(len(bricks), dtype=np.int16)),
            "brickrow": column("J", "row"),
            "brickcol": column("J", "column"),
            "ra": column("D", "ra"),
            "dec": column("D", "dec"),
            "ra1": column("D", "ra1"),
            "ra2": column("D", "ra2"),
            "dec1": column("D", "dec1"),
            "dec2": column("D", "dec2"),
        },
    )
    write_text(settings.out / "bricks.txt", "".join(f"{brick.name}\n" for brick in bricks))


def _observing(settings: MockSettings, brick: BrickGeometry) -> Observing:
    rng = seed_sequence(settings, brick, "observe")
    psf_fwhm = psf_fwhm_for_brick(rng, settings.bands)
    ebv = rng.uniform(0.02, 0.06)
    inverse_variance, exposures, transmission = {}, {}, {}
    for band in settings.bands:
        band_exposures, depth = coverage(rng, settings.size)
        exposures[band] = band_exposures
        # Pixel-scale structure (flat field, masked pixels in single exposures) on top of the footprints.
        texture = 1 + PIXEL_DEPTH_SCATTER * rng.standard_normal(depth.shape)
        inverse_variance[band] = (depth * texture / SINGLE_EXPOSURE_SIGMA[band] ** 2).astype(np.float32)
        transmission[band] = float(10 ** (-0.4 * EXTINCTION_COEFFICIENTS[band] * ebv))
    return Observing(psf_fwhm, inverse_variance, exposures, transmission, ebv)


def _tractor_columns(
    brick: BrickGeometry, truth: pd.DataFrame, measured: pd.DataFrame, wcs: WCS, ebv: float
) -> dict[str, tuple[str, np.ndarray]]:
    count = len(truth)
    ra, dec = wcs.all_pix2world(truth["x"].to_numpy(), truth["y"].to_numpy(), 0)
    primary = (ra >= brick.ra1) & (ra < brick.ra2) & (dec >= brick.dec1) & (dec < brick.dec2)
    columns: dict[str, tuple[str, np.ndarray]] = {
        "release": ("I", np.full(count, RELEASE, dtype=np.int16)),
        "brickid": ("J", np.full(count, brick.brickid, dtype=np.int32)),
        "brickname": ("8A", np.full(count, brick.name)),
        "objid": ("J", np.arange(count, dtype=np.int32)),
        "brick_primary": ("L", primary),
        "type": ("4A", np.array([f"{value:<4s}" for value in measured["type"]])),
        "ra": ("D", ra),
        "dec": ("D", dec),
        "ra_ivar": ("E", np.full(count, 1e12, dtype=np.float32)),
        "dec_ivar": ("E", np.full(count, 1e12, dtype=np.float32)),
        "bx": ("E", truth["x"].to_numpy(dtype=np.float32)),
        "by": ("E", truth["y"].to_numpy(dtype=np.float32)),
        "ebv": ("E", np.full(count, ebv, dtype=np.float32)),
    }
    for name in measured.columns:
        if name == "type":
            continue
        values = measured[name].to_numpy()
        fits_format = "I" if values.dtype == np.int16 else "E"
        columns[name] = (fits_format, values)
    return columns


def _scene(
    settings: MockSettings, brick: BrickGeometry, observing: Observing
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """True scene over the image plus a margin; measured values; detection mask (in objid order)."""
    rng = seed_sequence(settings, brick, "scene")
    size = settings.size
    truth = draw_truth(rng, size + 2 * SCENE_MARGIN, size + 2 * SCENE_MARGIN, -SCENE_MARGIN, -SCENE_MARGIN)
    measured, detected = measure(rng, truth, observing, settings.bands)
    # objid follows brightness, as a detection list would.
    order = np.argsort(-truth["flux_dered_r"].to_numpy(), kind="stable")
    return truth.iloc[order].reset_index(drop=True), measured.iloc[order].reset_index(drop=True), detected[order]


def draw_fakes(settings: MockSettings, brick: BrickGeometry, observing: Observing) -> tuple[pd.DataFrame, pd.DataFrame]:
    """True parameters and positions of the brick's fakes (mismatch applied), and their measured values.

    An independent sky realisation over the image is measured, detected and
    selected like the real catalog; the survivors' truths are the fakes. Each
    survivor goes to the first rs dir that has room and no fake within
    ``MIN_FAKE_SEPARATION`` pixels (in x and y) of it, or is dropped; the
    choice depends on position only, never on the fake's properties. Rows
    come in rs dir order, ``fakes_per_rsdir`` per rs dir.

    The measured values (DR5 tractor columns, as :func:`measure` gives them)
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
        pool = draw_truth(rng, settings.size, settings.size)
        measure_seed = int(rng.integers(2**63))
        measured, detected = measure(np.random.default_rng(measure_seed), pool, observing, settings.bands)
        keep = detected & select(measured.assign(brick_primary=True), FAKE_SELECTION)
        if settings.mismatch == "undetected":
            # Fakes cut at their input positions whether found or not: sources the measurement misses, drawn
            # from the box on their true values (obiwan draws its fakes' true parameters in it).
            missed = ~detected & select(_true_view(pool), FAKE_SELECTION)
            keep |= missed & (undetected_rng.random(len(pool)) < strength)
        if margin is not None:
            keep &= _clear_of_edges(pool, margin, strength * STAMP_HALF_WIDTH)
        pool = _apply_mismatch(pool, settings.mismatch, strength).assign(detected=detected)
        if settings.mismatch in TRUTH_MISMATCHES:
            measured, _ = measure(np.random.default_rng(measure_seed), pool, observing, settings.bands)
        survivors = pool[keep].reset_index(drop=True)
        candidates.append(survivors)
        candidates_measured.append(measured[keep].reset_index(drop=True))
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


def _true_view(truth: pd.DataFrame) -> pd.DataFrame:
    """True parameters dressed as a tractor catalog (noise-free fluxes and sizes), for a named selection."""
    view = pd.DataFrame(
        {
            "brick_primary": np.ones(len(truth), dtype=bool),
            "type": truth["type"].to_numpy(),
            "fracdev": truth["fracdev"].to_numpy(),
            "shapeexp_r": truth["rhalf"].to_numpy(),
            "shapedev_r": np.where(truth["type"] == "DEV", truth["rhalf"], truth["rhalf_dev"]),
        }
    )
    for band in ("g", "r", "z"):
        view[f"flux_{band}"] = truth[f"flux_dered_{band}"].to_numpy()
        view[f"mw_transmission_{band}"] = 1.0
        view[f"flux_ivar_{band}"] = 1.0
        view[f"nobs_{band}"] = 1
        view[f"psfsize_{band}"] = 2 * truth["rhalf"].to_numpy()
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


def _simcat_columns(
    fakes: pd.DataFrame, ids: np.ndarray, wcs: WCS, observing: Observing, bands: tuple[str, ...]
) -> dict:
    ra, dec = wcs.all_pix2world(fakes["x"].to_numpy(), fakes["y"].to_numpy(), 0)
    columns = {
        "id": ("J", ids.astype(np.int32)),
        "ra": ("D", ra),
        "dec": ("D", dec),
        # obiwan's simcat x, y are 1-indexed FITS pixels.
        "x": ("E", (fakes["x"].to_numpy() + 1).astype(np.float32)),
        "y": ("E", (fakes["y"].to_numpy() + 1).astype(np.float32)),
    }
    for band in bands:
        observed = fakes[f"flux_dered_{band}"].to_numpy() * observing.mw_transmission[band]
        columns[f"{band}flux"] = ("E", observed.astype(np.float32))
    for band in bands:
        columns[f"mw_transmission_{band}"] = (
            "E",
            np.full(len(fakes), observing.mw_transmission[band], dtype=np.float32),
        )
    columns["n"] = ("E", fakes["sersic_n"].to_numpy(dtype=np.float32))
    columns["rhalf"] = ("E", fakes["rhalf"].to_numpy(dtype=np.float32))
    columns["e1"] = ("E", fakes["e1"].to_numpy(dtype=np.float32))
    columns["e2"] = ("E", fakes["e2"].to_numpy(dtype=np.float32))
    return columns


def _dither_seed(settings: MockSettings, brick: BrickGeometry, band_index: int, kind_index: int) -> int:
    return 1 + (settings.seed * 7919 + brick.brickid * 31 + band_index * 7 + kind_index) % 10000


def write_brick(settings: MockSettings, brick: BrickGeometry) -> str:
    """Write one brick's DR5 and obiwan files; return a one-line summary."""
    observing = _observing(settings, brick)
    wcs = brick_wcs(settings, brick)
    truth, measured, detected = _scene(settings, brick, observing)
    catalog_truth, catalog_measured = truth[detected].reset_index(drop=True), measured[detected].reset_index(drop=True)
    dr5, obiwan = settings.out / "dr5", settings.out / "obiwan"
    write_table(
        Path(paths.dr5_file(dr5, "tractor", brick.name)),
        _tractor_columns(brick, catalog_truth, catalog_measured, wcs, observing.ebv),
    )
    shape = (settings.size, settings.size)
    noise_rng = seed_sequence(settings, brick, "noise")
    real_images = {}
    for band_index, band in enumerate(settings.bands):
        inverse_variance = observing.inverse_variance[band]
        fluxes = truth[f"flux_dered_{band}"].to_numpy() * observing.mw_transmission[band]
        model = render_sources(shape, truth, fluxes, observing.psf_fwhm[band])
        image = model + photon_noise(noise_rng, model, inverse_variance, band) + sky_noise(noise_rng, inverse_variance)
        image[inverse_variance <= 0] = 0.0
        real_images[band] = image
        header = coadd_header(settings, brick, band)
        header["PSFFWHM"] = (observing.psf_fwhm[band], "[arcsec] mock Moffat PSF FWHM")
        for kind_index, (kind, plane) in enumerate((("image", image), ("invvar", inverse_variance))):
            path = Path(paths.dr5_file(dr5, kind, brick.name, band))
            write_compressed_image(path, plane, header, kind, _dither_seed(settings, brick, band_index, kind_index))
    fakes, fakes_measured = draw_fakes(settings, brick, observing)
    strength = effective_strength(settings)
    # psf: the fakes' PSF scaled in FWHM (0: unconvolved); noise: the variance of their own photon noise kept.
    psf_scale = strength if settings.mismatch == "psf" else 1.0
    sim_noise_scale = math.sqrt(1.0 - strength) if settings.mismatch == "noise" else 1.0
    # background: the rs dirs' sky offset by this many sky sigmas; ivar: this fraction of the fakes' own variance.
    sky_offset = strength if settings.mismatch == "background" else 0.0
    source_variance = strength if settings.mismatch == "ivar" else 0.0
    fake_rng = seed_sequence(settings, brick, "simnoise")
    for chunk, rsdir in enumerate(mock_rsdir_names(settings.rsdirs, settings.fakes_per_rsdir)):
        rows = slice(chunk * settings.fakes_per_rsdir, (chunk + 1) * settings.fakes_per_rsdir)
        chunk_fakes = fakes.iloc[rows].reset_index(drop=True)
        ids = np.arange(rows.start, rows.stop)
        write_table(
            Path(paths.obiwan_file(obiwan, "simcat", brick.name, rsdir)),
            _simcat_columns(chunk_fakes, ids, wcs, observing, settings.bands),
        )
        # legacypipe re-run on the rs dir images: the DR5 sources and the fakes, measured.
        write_table(
            Path(paths.obiwan_file(obiwan, "tractor", brick.name, rsdir)),
            _tractor_columns(
                brick,
                # The re-fit finds only the fakes the measurement detects.
                pd.concat([catalog_truth, chunk_fakes[chunk_fakes["detected"]]], ignore_index=True),
                pd.concat(
                    [catalog_measured, fakes_measured.iloc[rows][chunk_fakes["detected"].to_numpy()]],
                    ignore_index=True,
                ),
                wcs,
                observing.ebv,
            ),
        )
        for band_index, band in enumerate(settings.bands):
            inverse_variance = observing.inverse_variance[band]
            fluxes = chunk_fakes[f"flux_dered_{band}"].to_numpy() * observing.mw_transmission[band]
            fake_model = render_sources(shape, chunk_fakes, fluxes, observing.psf_fwhm[band], psf_scale=psf_scale)
            # Drawn whatever the strength, so every strength uses the same random numbers.
            image = (
                real_images[band]
                + fake_model
                + sim_noise_scale * photon_noise(fake_rng, fake_model, inverse_variance, band)
            )
            rs_inverse_variance = inverse_variance
            if sky_offset:
                with np.errstate(divide="ignore"):
                    image = image + sky_offset * np.where(inverse_variance > 0, 1 / np.sqrt(inverse_variance), 0.0)
            if source_variance:
                # 1/ivar' = 1/ivar + model/gain with gain = sky x ivar (render.photon_noise): ivar / (1 + model/sky).
                model = np.clip(fake_model, 0, None)
                rs_inverse_variance = (inverse_variance / (1 + source_variance * model / SKY_PER_PIXEL[band])).astype(
                    np.float32
                )
            image[inverse_variance <= 0] = 0.0
            header = coadd_header(settings, brick, band)
            header["MISMATCH"] = (settings.mismatch, "realfake mock: how the fakes differ")
            if strength is not None:
                header["STRENGTH"] = (strength, "realfake mock: strength of the mismatch")
            for kind, plane, dither in (("image", image, 2 + chunk), ("invvar", rs_inverse_variance, 1)):
                path = Path(paths.obiwan_file(obiwan, kind, brick.name, rsdir, band))
                write_compressed_image(path, plane, header, kind, _dither_seed(settings, brick, band_index, dither))
    _write_truth(settings, brick, truth, detected, wcs)
    return (
        f"{int(detected.sum())} catalog sources of {len(truth)} rendered, "
        f"{len(fakes)} fakes in {settings.rsdirs} rs dirs"
    )


def _write_truth(
    settings: MockSettings, brick: BrickGeometry, truth: pd.DataFrame, detected: np.ndarray, wcs: WCS
) -> None:
    ra, dec = wcs.all_pix2world(truth["x"].to_numpy(), truth["y"].to_numpy(), 0)
    objid = np.full(len(truth), -1, dtype=np.int32)
    objid[detected] = np.arange(int(detected.sum()))
    columns = {"objid": ("J", objid), "ra": ("D", ra), "dec": ("D", dec)}
    for name in truth.columns:
        values = truth[name].to_numpy()
        columns[name] = ("4A", values.astype(str)) if name == "type" else ("D", values.astype(np.float64))
    write_table(settings.out / "truth" / brick_directory(brick.name) / f"truth-{brick.name}.fits", columns)
