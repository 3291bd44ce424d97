"""Generating one mock brick: the DR5 side (scene, coadds, tractor) and the fakes' side (rs dirs with the fakes).

:func:`write_brick` renders the brick's true scene into DR5-like coadds and
writes its measured tractor catalog (in the schema of ``settings.release``,
:mod:`realfake.mock.catalogs`); then, for each rs dir, the same scene plus
that rs dir's fakes (:func:`realfake.mock.fakes.draw_fakes`, with the named
mismatch), its simcat and legacypipe's re-fit. ``settings.injector`` chooses the layout of the fakes' side:
obiwan's (``obiwan/``, rs dirs below each brick, simcats) or legacysim's (``legacysim/``, runs
``file0_rs<N>_skip0`` at the top, injected catalogs with a few collided rows that are not rendered);
the pixels are the same in both. With ``settings.plain_run`` the legacysim tree also gets a plain legacypipe
run, :data:`realfake.mock.layout.MOCK_PLAIN_RUN`: a run with no fakes (:func:`_write_plain_run`). The
rendering, the population,
the fakes and the file formats are :mod:`realfake.mock.render`,
:mod:`realfake.mock.population`, :mod:`realfake.mock.fakes` and
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
from realfake.conventions import SURVEY_BANDS, brick_directory
from realfake.mock.catalogs import RELEASE_NUMBER, release_columns
from realfake.mock.fakes import MIN_FAKE_SEPARATION, STAMP_HALF_WIDTH, draw_fakes, star_density
from realfake.mock.files import write_compressed_image, write_table, write_text
from realfake.mock.layout import (
    MOCK_PLAIN_RUN,
    BrickGeometry,
    mock_injector_directory,
    mock_rsdir_names,
    seed_sequence,
)
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

SCENE_MARGIN = 40  # pixels: sources just outside the image still spill light into it
PIXEL_DEPTH_SCATTER = 0.02
# Rows of each legacysim injected catalog marked collided (not injected in the run): placed away from every
# fake of the run and never rendered, so that a reader that kept them would cut stamps of empty sky.
COLLIDED_PER_RUN = 3


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
    if settings.manifest:
        # Imported only when asked for: it reads the survey back through the cutouts' readers.
        from realfake.mock.manifest import write_run_manifest

        write_run_manifest(settings, bricks, mock_rsdir_names(settings.rsdirs, settings.fakes_per_rsdir))


def brick_observing(settings: MockSettings, brick: BrickGeometry) -> Observing:
    """How the brick was observed, per band: PSF FWHM, inverse-variance and exposure maps (``settings.size``
    square), Milky Way transmission; and its E(B-V). Drawn from the brick's own "observe" stream."""
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


def tractor_columns(
    brick: BrickGeometry, truth: pd.DataFrame, measured: pd.DataFrame, wcs: WCS, ebv: float
) -> dict[str, tuple[str, np.ndarray]]:
    """The DR5 tractor catalog of the sources ``truth`` (positions) with their ``measured`` values (as
    :func:`realfake.mock.population.measure` gives them), ``{name: (fits_format, values)}`` in row order, objid the
    row number; :func:`realfake.mock.catalogs.release_columns` turns it into a release's schema."""
    count = len(truth)
    ra, dec = wcs.all_pix2world(truth["x"].to_numpy(), truth["y"].to_numpy(), 0)
    primary = (ra >= brick.ra1) & (ra < brick.ra2) & (dec >= brick.dec1) & (dec < brick.dec2)
    columns: dict[str, tuple[str, np.ndarray]] = {
        "release": ("I", np.full(count, RELEASE_NUMBER["dr5"], dtype=np.int16)),
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
    margin = SCENE_MARGIN
    truth = draw_truth(rng, size + 2 * margin, size + 2 * margin, -margin, -margin, star_density(settings))
    measured, detected = measure(rng, truth, observing, settings.bands)
    # objid follows brightness, as a detection list would.
    order = np.argsort(-truth["flux_dered_r"].to_numpy(), kind="stable")
    return truth.iloc[order].reset_index(drop=True), measured.iloc[order].reset_index(drop=True), detected[order]


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


def _injected_columns(
    brick: BrickGeometry,
    fakes: pd.DataFrame,
    ids: np.ndarray,
    collided: pd.DataFrame,
    collided_ids: np.ndarray,
    wcs: WCS,
    observing: Observing,
    bands: tuple[str, ...],
) -> dict:
    """legacysim's ``injected-<brick>.fits`` of one run: the run's ``fakes`` (injected) then the ``collided`` rows
    (not injected), with legacysim's columns (LSIM ``catalog.py``): ``bx, by`` 0-indexed, observed fluxes
    (extinction included), ``sersic``, ``shape_r`` (arcsec), ``shape_e1, shape_e2``; no transmissions."""
    rows = pd.concat([fakes, collided], ignore_index=True)
    count = len(rows)
    ra, dec = wcs.all_pix2world(rows["x"].to_numpy(), rows["y"].to_numpy(), 0)
    columns = {"ra": ("D", ra), "dec": ("D", dec)}
    for band in bands:
        observed = rows[f"flux_dered_{band}"].to_numpy() * observing.mw_transmission[band]
        columns[f"flux_{band}"] = ("E", observed.astype(np.float32))
    columns["sersic"] = ("E", rows["sersic_n"].to_numpy(dtype=np.float32))
    columns["shape_r"] = ("E", rows["rhalf"].to_numpy(dtype=np.float32))
    columns["shape_e1"] = ("E", rows["e1"].to_numpy(dtype=np.float32))
    columns["shape_e2"] = ("E", rows["e2"].to_numpy(dtype=np.float32))
    all_ids = np.concatenate([ids, collided_ids]).astype(np.int64)
    columns["seed"] = ("K", all_ids)  # legacysim's per-source random seed; the mock draws none
    columns["id"] = ("K", all_ids)
    columns["brickname"] = ("8A", np.full(count, brick.name))
    # legacysim's bx, by are 0-indexed (get_xy_from_radec: bbx - 1).
    columns["bx"] = ("D", rows["x"].to_numpy(dtype=np.float64))
    columns["by"] = ("D", rows["y"].to_numpy(dtype=np.float64))
    columns["collided"] = ("L", np.arange(count) >= len(fakes))
    return columns


def _collided_rows(
    settings: MockSettings, rng: np.random.Generator, chunk_fakes: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """:data:`COLLIDED_PER_RUN` rows like the run's fakes (their profiles and fluxes, in turn) at positions drawn
    from ``rng`` more than MIN_FAKE_SEPARATION pixels (in x or y) from every fake of the run and from each other,
    a stamp's half width from the image edge; fewer where there is no room. With their row numbers in the run."""
    placed: list[tuple[float, float]] = []
    occupied = chunk_fakes[["x", "y"]].to_numpy(np.float64)
    for _ in range(100 * COLLIDED_PER_RUN):
        if len(placed) == COLLIDED_PER_RUN or len(chunk_fakes) == 0:
            break
        position = rng.uniform(STAMP_HALF_WIDTH, settings.size - STAMP_HALF_WIDTH, size=2)
        taken = np.vstack([occupied, np.array(placed).reshape(-1, 2)])
        if np.all(np.max(np.abs(taken - position), axis=1) > MIN_FAKE_SEPARATION):
            placed.append((float(position[0]), float(position[1])))
    rows = chunk_fakes.iloc[np.arange(len(placed)) % max(len(chunk_fakes), 1)].reset_index(drop=True)
    positions = np.array(placed).reshape(-1, 2)
    return rows.assign(x=positions[:, 0], y=positions[:, 1]), np.arange(len(placed))


def _run_file(settings: MockSettings, filetype: str, brick_name: str, run: str, band: str | None = None) -> Path:
    """A file of one run of the fakes' tree in the mock's layout (``settings.injector``): ``simcat`` (the
    injected catalog of legacysim), ``tractor``, ``image``, ``invvar``."""
    tree = settings.out / mock_injector_directory(settings.injector)
    if settings.injector == "legacysim":
        filetype = "injected" if filetype == "simcat" else filetype
        return Path(paths.legacysim_file(tree, filetype, brick_name, run, band))
    return Path(paths.obiwan_file(tree, filetype, brick_name, run, band))


def _dither_seed(settings: MockSettings, brick: BrickGeometry, band_index: int, kind_index: int) -> int:
    return 1 + (settings.seed * 7919 + brick.brickid * 31 + band_index * 7 + kind_index) % 10000


def write_brick(settings: MockSettings, brick: BrickGeometry) -> str:
    """Write one brick's DR5 and obiwan files; return a one-line summary."""
    observing = brick_observing(settings, brick)
    wcs = brick_wcs(settings, brick)
    truth, measured, detected = _scene(settings, brick, observing)
    catalog_truth, catalog_measured = truth[detected].reset_index(drop=True), measured[detected].reset_index(drop=True)
    dr5 = settings.out / "dr5"
    sources = len(catalog_truth)
    dr5_tractor = tractor_columns(brick, catalog_truth, catalog_measured, wcs, observing.ebv)
    write_table(
        Path(paths.dr5_file(dr5, "tractor", brick.name)), release_columns(dr5_tractor, settings.release, sources)
    )
    real_images = _write_dr5_coadds(settings, brick, observing, truth)
    fakes, fakes_measured = draw_fakes(settings, brick, observing)
    fake_rng = seed_sequence(settings, brick, "simnoise")
    # Its own stream: the collided rows change nothing else (the pixels are those of the obiwan layout).
    collided_rng = seed_sequence(settings, brick, "collided")
    total = settings.rsdirs * settings.fakes_per_rsdir
    for chunk, rsdir in enumerate(mock_rsdir_names(settings.rsdirs, settings.fakes_per_rsdir, settings.injector)):
        rows = slice(chunk * settings.fakes_per_rsdir, (chunk + 1) * settings.fakes_per_rsdir)
        chunk_fakes = fakes.iloc[rows].reset_index(drop=True)
        ids = np.arange(rows.start, rows.stop)
        if settings.injector == "legacysim":
            collided, collided_rows = _collided_rows(settings, collided_rng, chunk_fakes)
            # Ids after every fake's, as a legacysim input catalog's row numbers would be.
            collided_ids = total + chunk * COLLIDED_PER_RUN + collided_rows
            catalog = _injected_columns(brick, chunk_fakes, ids, collided, collided_ids, wcs, observing, settings.bands)
        else:
            catalog = _simcat_columns(chunk_fakes, ids, wcs, observing, settings.bands)
        write_table(_run_file(settings, "simcat", brick.name, rsdir), catalog)
        # legacypipe re-run on the rs dir images: the DR5 sources and the fakes, measured.
        write_table(
            _run_file(settings, "tractor", brick.name, rsdir),
            release_columns(
                tractor_columns(
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
                settings.release,
                sources,
            ),
        )
        _write_rsdir_coadds(settings, brick, observing, 2 + chunk, rsdir, chunk_fakes, real_images, fake_rng)
    if settings.plain_run:
        _write_plain_run(settings, brick, observing, wcs, fakes.iloc[:0], dr5_tractor, real_images)
    _write_truth(settings, brick, truth, detected, wcs)
    if settings.manifest:
        from realfake.mock.manifest import write_manifest_brick

        write_manifest_brick(settings, brick)
    plain = f", plain run {MOCK_PLAIN_RUN}" if settings.plain_run else ""
    return (
        f"{int(detected.sum())} catalog sources of {len(truth)} rendered, "
        f"{len(fakes)} fakes in {settings.rsdirs} rs dirs{plain}"
    )


def _write_plain_run(
    settings: MockSettings,
    brick: BrickGeometry,
    observing: Observing,
    wcs: WCS,
    no_fakes: pd.DataFrame,
    dr5_tractor: dict[str, tuple[str, np.ndarray]],
    real_images: dict[str, np.ndarray],
) -> None:
    """Write the plain legacypipe run :data:`realfake.mock.layout.MOCK_PLAIN_RUN` into the legacysim tree: what a
    run is with zero fakes (``no_fakes``, the fakes' table without rows). Its coadds are the rs dirs' processing
    of the DR5 tree's ``real_images`` (:func:`_write_rsdir_coadds`: the ``background`` mismatch's sky offset
    included; the fakes-dependent mismatches have nothing to act on), compressed with the DR5 coadds' dither
    seeds, so that with no sky offset they decode to the DR5 tree's pixels exactly. Its tractor catalog is the
    DR5 tree's (``dr5_tractor``, :func:`tractor_columns`, in the release's schema): legacypipe's fit of the same
    sources. Its injected catalog is empty, as legacysim writes one for a run without ``--injected-fn``. Draws
    from its own stream ("plainrun"), so the rest of the survey is the same with or without it."""
    empty = np.zeros(0, dtype=np.int64)
    injected = _injected_columns(brick, no_fakes, empty, no_fakes, empty, wcs, observing, settings.bands)
    write_table(_run_file(settings, "simcat", brick.name, MOCK_PLAIN_RUN), injected)
    sources = len(dr5_tractor["objid"][1])
    write_table(
        _run_file(settings, "tractor", brick.name, MOCK_PLAIN_RUN),
        release_columns(dr5_tractor, settings.release, sources),
    )
    plain_rng = seed_sequence(settings, brick, "plainrun")
    # Image dither 0: the DR5 coadds' own (_write_dr5_coadds' kind index of "image").
    _write_rsdir_coadds(settings, brick, observing, 0, MOCK_PLAIN_RUN, no_fakes, real_images, plain_rng)


def _write_dr5_coadds(
    settings: MockSettings, brick: BrickGeometry, observing: Observing, truth: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Render the true scene ``truth`` with sky and photon noise and write the brick's DR5 coadds (image and
    invvar per band); return the images by band, (H, W) in nanomaggies per pixel, on which the rs dirs add
    their fakes."""
    shape = (settings.size, settings.size)
    dr5 = settings.out / "dr5"
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
    return real_images


def _write_rsdir_coadds(
    settings: MockSettings,
    brick: BrickGeometry,
    observing: Observing,
    image_dither: int,
    rsdir: str,
    chunk_fakes: pd.DataFrame,
    real_images: dict[str, np.ndarray],
    fake_rng: np.random.Generator,
) -> None:
    """Write the coadds of rs dir ``rsdir``: the brick's ``real_images`` plus its fakes ``chunk_fakes``, with
    their photon noise (from ``fake_rng``) and the named mismatch applied; the images compressed with dither
    seed index ``image_dither`` (:func:`_dither_seed`: 2 + the rs dir's number; the inverse variances with 1,
    as the DR5 tree's)."""
    shape = (settings.size, settings.size)
    strength = effective_strength(settings)
    # psf: the fakes' PSF scaled in FWHM (0: unconvolved); noise: the variance of their own photon noise kept.
    psf_scale = strength if settings.mismatch == "psf" else 1.0
    sim_noise_scale = math.sqrt(1.0 - strength) if settings.mismatch == "noise" else 1.0
    # background: the rs dirs' sky offset by this many sky sigmas; ivar: this fraction of the fakes' own variance.
    sky_offset = strength if settings.mismatch == "background" else 0.0
    source_variance = strength if settings.mismatch == "ivar" else 0.0
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
        for kind, plane, dither in (("image", image, image_dither), ("invvar", rs_inverse_variance, 1)):
            path = _run_file(settings, kind, brick.name, rsdir, band)
            write_compressed_image(path, plane, header, kind, _dither_seed(settings, brick, band_index, dither))


def _write_truth(
    settings: MockSettings, brick: BrickGeometry, truth: pd.DataFrame, detected: np.ndarray, wcs: WCS
) -> None:
    ra, dec = wcs.all_pix2world(truth["x"].to_numpy(), truth["y"].to_numpy(), 0)
    objid = np.full(len(truth), -1, dtype=np.int32)
    objid[detected] = np.arange(int(detected.sum()))
    columns = {"objid": ("J", objid), "ra": ("D", ra), "dec": ("D", dec)}
    # Fluxes of the bands rendered only: a g, r, z survey's truth is as it was before the population had i.
    unrendered = {f"flux_dered_{band}" for band in SURVEY_BANDS if band not in settings.bands}
    for name in truth.columns:
        if name in unrendered:
            continue
        values = truth[name].to_numpy()
        columns[name] = ("4A", values.astype(str)) if name == "type" else ("D", values.astype(np.float64))
    write_table(settings.out / "truth" / brick_directory(brick.name) / f"truth-{brick.name}.fits", columns)
