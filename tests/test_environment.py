"""environment.yml (conda, for NERSC) pins exactly what pyproject.toml pins.

pyproject.toml's dependencies plus its dev extra must appear in environment.yml's
pip section with the same == versions, and nothing else may: a package or a
version that only one file has means the two installs differ.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from fixtures import REPOSITORY

# "name==version" with nothing else (no extras, markers or ranges).
EXACT_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)")


def normalized_name(name: str) -> str:
    """A package name as PyPI compares it: lower case, runs of -, _ and . as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def exact_pins(requirements: list[str], source: str) -> dict[str, str]:
    """{normalized name: version} from "name==version" strings; raises ValueError
    naming the source for a requirement that is not an exact pin or a repeat."""
    pins = {}
    for requirement in requirements:
        match = EXACT_PIN.fullmatch(requirement.strip())
        if match is None:
            raise ValueError(f"{source}: {requirement!r} is not an exact 'name==version' pin")
        name = normalized_name(match["name"])
        if name in pins:
            raise ValueError(f"{source}: {name} is listed twice")
        pins[name] = match["version"]
    return pins


def pin_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """One line per package missing from, extra in, or of another version in actual."""
    lines = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            lines.append(f"{name}=={expected[name]} is in pyproject.toml only")
        elif name not in expected:
            lines.append(f"{name}=={actual[name]} is in environment.yml only")
        elif expected[name] != actual[name]:
            lines.append(f"{name}: pyproject.toml has {expected[name]}, environment.yml {actual[name]}")
    return lines


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return exact_pins(requirements, "pyproject.toml")


def conda_environment() -> dict:
    return yaml.safe_load((REPOSITORY / "environment.yml").read_text())


def environment_pip_pins() -> dict[str, str]:
    pip_sections = [entry["pip"] for entry in conda_environment()["dependencies"] if isinstance(entry, dict)]
    assert len(pip_sections) == 1, "environment.yml should have exactly one pip: section"
    return exact_pins(pip_sections[0], "environment.yml")


def test_environment_pins_exactly_what_pyproject_pins():
    differences = pin_differences(pyproject_pins(), environment_pip_pins())
    assert differences == [], "environment.yml and pyproject.toml disagree:\n" + "\n".join(differences)


def test_environment_is_python_3_11_from_conda_forge_with_pip():
    environment = conda_environment()
    assert environment["channels"] == ["conda-forge"]
    conda_packages = [entry for entry in environment["dependencies"] if isinstance(entry, str)]
    assert sorted(conda_packages) == ["pip", "python=3.11"]


def test_mpich_from_the_mpi_extra_is_left_to_the_system():
    # At NERSC mpi4py must use Cray MPICH, so the pip-installed MPICH stays out.
    assert "mpich" not in environment_pip_pins()
    assert "mpi4py" in environment_pip_pins()


@pytest.mark.parametrize(
    ("environment_pins", "expected_line"),
    [
        ({"numpy": "2.4.6"}, "scipy==1.17.1 is in pyproject.toml only"),
        ({"numpy": "2.4.6", "scipy": "1.17.1", "torch": "2.0"}, "torch==2.0 is in environment.yml only"),
        ({"numpy": "2.4.5", "scipy": "1.17.1"}, "numpy: pyproject.toml has 2.4.6, environment.yml 2.4.5"),
    ],
)
def test_a_difference_either_way_is_reported(environment_pins, expected_line):
    assert pin_differences({"numpy": "2.4.6", "scipy": "1.17.1"}, environment_pins) == [expected_line]


def test_names_are_compared_as_pypi_compares_them():
    pins = exact_pins(["Scikit_Learn==1.9.1", "snakemake.executor-plugin_slurm==2.8.0"], "test")
    assert pins == {"scikit-learn": "1.9.1", "snakemake-executor-plugin-slurm": "2.8.0"}


@pytest.mark.parametrize("requirement", ["numpy>=2.4", "numpy", "numpy==2.4.6; python_version<'3.12'"])
def test_a_requirement_that_is_not_an_exact_pin_is_refused(requirement):
    with pytest.raises(ValueError, match="not an exact"):
        exact_pins([requirement], "pyproject.toml")


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_the_python_code_passes_ruff(command):
    """The linter and formatter of `make lint`, with the settings in pyproject.toml."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), *command],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
