"""The stubs describe the module: every public name of laissez._laissez has a stub, and
every stubbed name exists."""

from __future__ import annotations

import ast
from pathlib import Path

import laissez
import laissez._laissez as native
from conftest import REPO

STUB = Path(laissez.__file__).with_name("_laissez.pyi")


def test_stubs_and_py_typed_ship_and_match_the_module():
    assert Path(laissez.__file__).with_name("py.typed").exists()
    tree = ast.parse(STUB.read_text())
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    public = {n for n in dir(native) if not n.startswith("_")}
    assert public == {n for n in stubbed if not n.startswith("_")}
    assert set(laissez.__all__) == public
    # Methods too: every public method or property of each class is stubbed.
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not issubclass(getattr(native, node.name), Exception):
            names = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            actual = {n for n in vars(getattr(native, node.name)) if not n.startswith("_")}
            assert actual == names - {"__init__"} - {n for n in names if n.startswith("__")}, node.name


def test_the_examples_and_the_helpers_type_check_strictly(tmp_path):
    """mypy --strict against the stubs: what users write from the README and the Python guide
    type-checks."""
    import subprocess
    import sys

    from test_readme import python_blocks

    examples = []
    for relative, count in (("README.md", 1), ("docs/guide/python.md", 5)):
        blocks = python_blocks(relative)
        assert len(blocks) == count, relative
        example = tmp_path / (relative.replace("/", "_").replace(".md", "") + "_example.py")
        example.write_text("\n".join(blocks))
        examples.append(str(example))
    # The helpers' sources, as the wheel ships them (test_wheel.py checks the wheel holds them):
    # mypy refuses a file given inside site-packages, whose other modules it would take for the
    # user's own.
    source = REPO / "crates" / "python" / "python" / "laissez"
    helpers = []
    for name in ("pika.py", "aio_pika.py", "_call.py"):
        installed = Path(laissez.__file__).with_name(name)
        assert (source / name).read_bytes() == installed.read_bytes(), name
        helpers.append(str(source / name))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
         "--cache-dir", str(tmp_path / "mypy-cache"), *examples, *helpers],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
