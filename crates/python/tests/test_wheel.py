"""The wheel users install: one abi3 wheel for CPython 3.9 and later, named laissez-agents,
importing as `laissez`, that works in a fresh virtual environment with nothing else installed.

scripts/test builds the wheel with `maturin build` and passes its path in LAISSEZ_WHEEL; without
it these tests fail rather than pass vacuously.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import laissez

DISTRIBUTION = "laissez-agents"
# PEP 427: {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl, the name with
# its dashes as underscores.
WHEEL_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<python>[^-]+)-(?P<abi>[^-]+)"
    r"-(?P<platform>[^-]+)\.whl$"
)


@pytest.fixture(scope="module")
def wheel() -> Path:
    value = os.environ.get("LAISSEZ_WHEEL")
    if not value:
        pytest.fail("LAISSEZ_WHEEL is not set: scripts/test builds the wheel and sets it")
    path = Path(value)
    assert path.is_file(), f"LAISSEZ_WHEEL={value} is not a file"
    return path


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    """The METADATA file of the wheel's .dist-info, header by header."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert len(names) == 1, f"one METADATA in the wheel, found {names}"
        message = Parser().parsestr(archive.read(names[0]).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields


def test_the_wheel_is_one_abi3_wheel_for_cpython_3_9_and_later(wheel: Path):
    match = WHEEL_NAME.match(wheel.name)
    assert match, f"{wheel.name} is not a wheel's file name"
    assert match["name"] == DISTRIBUTION.replace("-", "_")
    assert (match["python"], match["abi"]) == ("cp39", "abi3"), wheel.name
    assert match["version"] == importlib.metadata.version(DISTRIBUTION)


def test_the_wheel_names_the_distribution_and_holds_the_package(wheel: Path):
    metadata = wheel_metadata(wheel)
    assert metadata["Name"] == [DISTRIBUTION]
    assert metadata["Requires-Python"] == [">=3.9"]
    assert metadata["License-Expression"] == ["Apache-2.0 OR MIT"]
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    for expected in ["laissez/__init__.py", "laissez/pika.py", "laissez/_laissez.pyi",
                     "laissez/py.typed"]:
        assert expected in files, f"{expected} is missing from {wheel.name}"
    for licence in ["LICENSE-APACHE", "LICENSE-MIT"]:
        path = f"laissez_agents-{metadata['Version'][0]}.dist-info/licenses/{licence}"
        assert path in files, f"{path} is missing from {wheel.name}"
    assert sorted(metadata["License-File"]) == ["LICENSE-APACHE", "LICENSE-MIT"]
    modules = [f for f in files if f.startswith("laissez/_laissez")]
    # The stable ABI's suffix: one module for every CPython from 3.9 on.
    assert "laissez/_laissez.abi3.so" in modules, modules


def test_the_wheel_installs_and_works_in_a_fresh_venv(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --no-index: nothing but the wheel (its only dependency is the optional pika extra).
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    script = (
        "import importlib.metadata, laissez\n"
        "key = laissez.SecretKey.generate()\n"
        "print(laissez.__file__)\n"
        "print(len(key.public_key().kid))\n"
        "print(importlib.metadata.distribution('laissez-agents').metadata['Name'])\n"
    )
    # Run from the temporary directory: nothing of the repository is on the path.
    out = subprocess.run([str(python), "-c", script], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    module_file, kid_length, name = out.stdout.splitlines()
    assert Path(module_file).resolve().is_relative_to(venv.resolve()), module_file
    assert int(kid_length) == 16
    assert name == DISTRIBUTION


def test_this_suite_runs_against_the_installed_wheel():
    # Not an editable build of crates/python/python: the package this venv imports is the one
    # pip installed from the wheel, in its site-packages.
    site_packages = Path(sysconfig.get_paths()["platlib"]).resolve()
    assert Path(laissez.__file__).resolve().is_relative_to(site_packages), laissez.__file__
    installed = importlib.metadata.distribution(DISTRIBUTION).files or []
    assert any(str(f) == "laissez/__init__.py" for f in installed)
    direct_url = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    assert direct_url is not None and ".whl" in direct_url, direct_url
