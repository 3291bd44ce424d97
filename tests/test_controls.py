"""The control experiments, end to end: the whole workflow on the default mock survey.

`mismatch: none` (fakes from the same population as the selected real sources)
must give a verdict consistent with chance; named mismatches must give
significant ones. These are the tests that a "distinguishable" verdict finds
real differences and not plumbing. About two minutes per mismatch on 2 cores.
"""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "controls.py"


def load_controls():
    specification = importlib.util.spec_from_file_location("controls", SCRIPT)
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mismatch", "distinguishable"),
    [("none", False), ("psf", True), ("size", True)],
)
def test_control_experiment(tmp_path, mismatch, distinguishable):
    verdict = load_controls().run_control(mismatch, tmp_path / mismatch)
    assert verdict["examples"] >= 150
    assert verdict["significant"] is distinguishable, verdict["sentence"]
    if distinguishable:
        assert verdict["p_value"] < 0.05
        assert verdict["accuracy_low"] > 0.5
    else:
        assert verdict["p_value"] >= 0.05
        assert verdict["accuracy_low"] <= 0.5 <= verdict["accuracy_high"] + 1e-9
