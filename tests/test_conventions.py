"""realfake.conventions and realfake.paths: the shared definitions and the survey file layout."""

from __future__ import annotations

import pytest

from realfake import conventions, paths
from realfake.errors import RealfakeError


def test_brick_directory_and_names() -> None:
    assert conventions.brick_directory("1238p245") == "123"
    assert conventions.brick_directory("0001m010") == "000"
    for bad in ("123p245", "1238x245", "1238p2450", "../1238p245", 1238):
        with pytest.raises(RealfakeError, match="is not of the DR5 form"):
            conventions.brick_directory(bad)


def test_channels_bands_and_labels() -> None:
    assert conventions.channel_names(("g", "z")) == ["g", "z", "ivar_g", "ivar_z"]
    assert conventions.bands_of(("g", "r", "ivar_g", "ivar_r")) == ("g", "r")
    assert conventions.is_inverse_variance("ivar_z") and not conventions.is_inverse_variance("z")
    assert conventions.LABELS == {"real": 0, "fake": 1}
    assert conventions.KIND_OF_LABEL == {conventions.LABELS["real"]: "real", conventions.LABELS["fake"]: "sim"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1238p245\n123p245\n", "bricks.txt, line 2: '123p245' is not a DR5 brick name like 1238p245"),
        ("1238p245\n\n# note\n1238p245  # again\n", "bricks.txt, line 4: brick 1238p245 is listed twice"),
        ("# nothing\n\n", "bricks.txt lists no bricks"),
    ],
)
def test_a_bad_brick_list_names_its_line(text, message) -> None:
    with pytest.raises(RealfakeError) as error:
        conventions.parse_brick_list(text, "bricks.txt")
    assert str(error.value) == message


def test_a_brick_list_keeps_order_and_skips_comments() -> None:
    text = "1241p245  # second brick of the mock\n\n1238p245\n"
    assert conventions.parse_brick_list(text, "bricks.txt") == ["1241p245", "1238p245"]


def test_dr5_and_obiwan_paths_in_both_layouts(tmp_path) -> None:
    dr5 = str(tmp_path / "dr5")
    assert paths.dr5_file(dr5, "tractor", "1238p245") == f"{dr5}/tractor/123/tractor-1238p245.fits"
    assert paths.dr5_file(dr5, "image", "1238p245", "z") == (
        f"{dr5}/coadd/123/1238p245/legacysurvey-1238p245-image-z.fits.fz"
    )
    assert paths.dr5_file(dr5, "brick_table") == f"{dr5}/survey-bricks.fits"
    (tmp_path / "dr5").mkdir()
    (tmp_path / "dr5" / "survey-bricks.fits.gz").touch()
    assert paths.dr5_file(dr5, "brick_table") == f"{dr5}/survey-bricks.fits.gz"  # as DR5 ships it
    obiwan = "/o"
    assert (
        paths.obiwan_file(obiwan, "simcat", "1238p245", "rs0") == "/o/obiwan/123/1238p245/rs0/simcat-elg-1238p245.fits"
    )
    assert paths.obiwan_file(obiwan, "invvar", "1238p245", "rs0", "g") == (
        "/o/coadd/123/1238p245/rs0/legacysurvey-1238p245-invvar-g.fits.fz"
    )
    assert paths.obiwan_file(obiwan, "tractor", "1238p245", "rs0", layout="older") == (
        "/o/elg/123/1238p245/rs0/tractor/tractor-1238p245.fits"
    )
    assert paths.obiwan_file(obiwan, "coadd_dir", "1238p245", "rs5", layout="older") == "/o/elg/123/1238p245/rs5/coadd"
    with pytest.raises(RealfakeError, match="coadd kind 'model'"):
        paths.coadd_name("1238p245", "model", "g")
