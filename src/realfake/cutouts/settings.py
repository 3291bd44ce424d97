"""What cutouts to make: :class:`CutoutSettings`, and what happened to a brick's sources: :class:`CutoutCounts`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from realfake.conventions import BANDS, INJECTORS, KINDS, STAMP_SIZE, SURVEY_BANDS, legacysim_run_problem
from realfake.errors import RealfakeError
from realfake.settings import check_settings, letters_text, parse_letters, setting, spaced
from realfake.survey.selection import SELECTION_BANDS, SELECTIONS, check_selection, missing_selection_bands

DEFAULT_SELECTION = "elg_padded"
# Where the real stamps are cut: the DR5 coadds, the obiwan rs dir coadds the fakes are in, or a plain legacypipe
# run of legacysim (no fakes) in the fakes' tree.
REAL_SOURCES = ("dr5", "rsdir", "run")


@dataclass(frozen=True)
class CutoutSettings:
    """What cutouts to make: of which kind, from which trees, of which sources. Real sources cut from the rs
    dirs (``real_source="rsdir"``, the same-image control: ``docs/audit.md``) come from the first rs dir, in
    :func:`realfake.survey.runs.find_runs` order (obiwan's rs dirs or legacysim's runs, as ``injector``
    says), with no fake within ``real_exclusion_radius`` of them, and are dropped as ``near_fake`` when every
    rs dir has one. With ``real_source="run"`` (the same-image control on genuine data) the reals are the
    sources of ``real_run``, a plain legacypipe run of legacysim in the fakes' tree, cut from its coadds; that
    run is then never one of the fakes' runs (:attr:`excluded_runs`)."""

    kind: str = setting(help="real (tractor sources) or sim (obiwan fakes)", choices=KINDS)
    dr5_dir: Path | None = setting(
        None,
        help="DR5 tree: coadd/, tractor/, survey-bricks.fits[.gz] (the brick table and tractor catalog; for fakes "
        "with an older simcat, the fallback Milky Way transmission); needed unless --manifest is given",
    )
    manifest: Path | None = setting(
        None,
        help="an injection run manifest (docs/manifest.md): read the tile's pixels and catalogs from the files it "
        "names instead of the DR5 and obiwan trees; the bricks are its tiles, the selection its select",
    )
    obiwan_dir: Path | None = setting(
        None,
        help="the fakes' tree, obiwan's with the rs dirs or legacysim's with the runs (--injector; needed for "
        "--kind sim and for --real-source rsdir)",
    )
    injector: str = setting(
        "obiwan",
        help="what made the --obiwan-dir tree: obiwan (rs dirs below each brick, simcats with 1-indexed x, y) or "
        "legacysim (file<F>_rs<R>_skip<S> run dirs at the top, injected catalogs with 0-indexed bx, by and "
        "collided rows, which are skipped; realfake.survey.runs)",
        choices=INJECTORS,
    )
    bands: tuple[str, ...] = setting(
        BANDS,
        help="bands, e.g. grz, z or griz (DR10), each at most once; the stamps' channels follow this order",
        choices=SURVEY_BANDS,
        parse=parse_letters,
        text=letters_text,
    )
    selection: str = setting(
        DEFAULT_SELECTION,
        help=f"selection of the real sources: a name ({', '.join(sorted(SELECTIONS))}; "
        "realfake.survey.selection.SELECTIONS) or a pandas expression over the tractor catalog's lower-case "
        'columns, e.g. "type == \'PSF\'" or "brick_primary & (maskbits // 2**1 % 2 == 0)"',
        metavar="NAME_OR_EXPRESSION",
    )
    select_fakes: bool = setting(
        False, help="also cut the fakes with the selection, applied to their true simcat values"
    )
    pad_edges: bool = setting(
        False,
        help="keep stamps that leave the image, padded with image 0 and inverse variance 0 (off: drop them, "
        "counted as off_image)",
    )
    stamp_size: int = setting(
        STAMP_SIZE,
        help="stamp side in pixels, even (realfake.conventions.STAMP_SIZE; no flag: the convention)",
        command_line=False,
    )
    real_run: str | None = setting(
        None,
        help="with --real-source run: the plain legacypipe run of the legacysim tree (--obiwan-dir) to take the "
        "reals from, a run dir name file<F>_rs<R>_skip<S> (legacysim run without --injected-fn; the mock's is "
        "realfake.mock.layout.MOCK_PLAIN_RUN); it is left out of the fakes' runs",
        metavar="RUN",
    )
    real_source: str = setting(
        "dr5",
        help="cut the real sources from the DR5 coadds (dr5), from the obiwan rs dir coadds the fakes are in "
        "(rsdir: the same-image control, needs --obiwan-dir), or from a plain legacypipe run of legacysim, its "
        "own tractor catalog's sources in its own coadds (run: the same processing for both classes on genuine "
        "data, needs --injector legacysim and --real-run)",
        choices=REAL_SOURCES,
    )
    real_exclusion_radius: int = setting(
        STAMP_SIZE // 2,
        help="with --real-source rsdir, skip an rs dir for a real source with a fake within this many pixels in x "
        "and y (chessboard distance; the default, half a stamp, keeps every fake's centre out of every real stamp)",
        minimum=0,
        unit="pixels",
        metavar="PIXELS",
    )

    def __post_init__(self) -> None:
        check_settings(self, describe=spaced)
        if not self.bands or len(set(self.bands)) != len(self.bands):
            raise RealfakeError(
                f"bands {''.join(self.bands)!r}: give each of {', '.join(SURVEY_BANDS)} at most once, at least one"
            )
        unknown = [band for band in self.bands if band not in SURVEY_BANDS]
        if unknown:
            raise RealfakeError(f"unknown band(s) {', '.join(unknown)}; the surveys have {', '.join(SURVEY_BANDS)}")
        check_selection(self.selection)
        self._check_real_run()
        if self.manifest is not None:
            self._check_manifest_settings()
            return
        if self.dr5_dir is None:
            raise RealfakeError("cutouts need the DR5 tree (--dr5-dir) or an injection run manifest (--manifest)")
        missing = missing_selection_bands(self.selection, self.bands)
        if missing and (self.kind == "real" or self.select_fakes):
            raise RealfakeError(
                f"selection {self.selection} cuts on bands {', '.join(SELECTION_BANDS[self.selection])}, but the bands "
                f"are {', '.join(self.bands)}: add {', '.join(missing)} to the bands or choose another selection"
            )
        if self.kind == "sim" and self.obiwan_dir is None:
            raise RealfakeError("cutouts of kind sim need the obiwan output tree (--obiwan-dir)")
        if self.cuts_reals_from_rsdirs and self.obiwan_dir is None:
            raise RealfakeError("real cutouts with --real-source rsdir need the obiwan output tree (--obiwan-dir)")
        if self.cuts_reals_from_run and self.obiwan_dir is None:
            raise RealfakeError("real cutouts with --real-source run need the legacysim output tree (--obiwan-dir)")
        if self.stamp_size < 2 or self.stamp_size % 2:
            raise RealfakeError(f"stamp size must be even and positive, got {self.stamp_size}")

    def _check_manifest_settings(self) -> None:
        """What a manifest does not combine with: the rs dirs' reals (a manifest has one real side per tile)."""
        if self.real_source != "dr5":
            raise RealfakeError(
                f"real source {self.real_source} needs the obiwan tree; with a manifest the reals are its tiles' real "
                "sides (leave --real-source at dr5)"
            )
        if self.stamp_size < 2 or self.stamp_size % 2:
            raise RealfakeError(f"stamp size must be even and positive, got {self.stamp_size}")

    def _check_real_run(self) -> None:
        """``real_source="run"`` needs legacysim's tree and the plain run's name; a name must be a run dir's."""
        if self.real_run is not None:
            problem = legacysim_run_problem(self.real_run)
            if problem:
                raise RealfakeError(f"real run {problem} (config cutouts.real_run; flag --real-run)")
        if self.real_source != "run":
            return
        if self.injector != "legacysim":
            raise RealfakeError(
                f"real source run cuts the reals from a plain legacypipe run of legacysim: it needs injector "
                f"legacysim, not {self.injector} (config cutouts.real_source and input.injector, or mock.injector; "
                "flags --real-source and --injector)"
            )
        if self.real_run is None:
            raise RealfakeError(
                "real source run needs the name of the plain run to cut the reals from, a legacysim run dir "
                "file<F>_rs<R>_skip<S> (config cutouts.real_run; flag --real-run)"
            )

    @property
    def cuts_reals_from_rsdirs(self) -> bool:
        """Whether these are real cutouts taken from the rs dir coadds (``real_source="rsdir"``)."""
        return self.kind == "real" and self.real_source == "rsdir"

    @property
    def cuts_reals_from_run(self) -> bool:
        """Whether these are real cutouts taken from the plain run ``real_run`` (``real_source="run"``)."""
        return self.kind == "real" and self.real_source == "run"

    @property
    def excluded_runs(self) -> tuple[str, ...]:
        """The runs of the fakes' tree that are not runs of fakes: the plain run ``real_run`` when one is named,
        whichever the real source and the kind (the reals of ``real_source="run"`` come from it; with another
        real source it is still a run without fakes, and both kinds' files agree on it), else none."""
        return (self.real_run,) if self.real_run is not None else ()

    @property
    def applied_selection(self) -> str:
        """The selection this kind's sources pass: the named one, or "none" for fakes without select_fakes (with a
        manifest, its sides' select expressions are applied instead, and recorded with each cutouts file)."""
        return self.selection if self.kind == "real" or self.select_fakes else "none"


@dataclass(frozen=True)
class CutoutCounts:
    """What happened to a brick's sources: read from the catalogs, selected, written, dropped (by reason:
    off the image, without coverage, or, for reals cut from the rs dirs, near a fake in every rs dir)."""

    sources_read: int = 0
    sources_selected: int = 0
    sources_written: int = 0
    dropped_off_image: int = 0
    dropped_no_coverage: int = 0
    dropped_near_fake: int = 0

    def __add__(self, other: CutoutCounts) -> CutoutCounts:
        return CutoutCounts(*(mine + theirs for mine, theirs in zip(asdict(self).values(), asdict(other).values())))

    def summary(self) -> str:
        return (
            f"{self.sources_written} stamps of {self.sources_selected} selected ({self.sources_read} read; "
            f"dropped {self.dropped_off_image} off_image, {self.dropped_no_coverage} no_coverage, "
            f"{self.dropped_near_fake} near_fake)"
        )
