"""The floors of the house hold: import-linter's contracts (pyproject.toml) pass on this tree, and
a wrong import — a lower floor reaching up — makes them fail.

The second test is the proof that the first can fail: it copies the packages into a temporary
folder, adds one import that breaks a floor, and runs the same contracts there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["root_packages"])


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _copy_tree(to: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    for package in _root_packages():
        shutil.copytree(
            ROOT / package, to / package, ignore=shutil.ignore_patterns("__pycache__", "*.json", "static")
        )
    return to


def test_every_package_is_in_a_floor() -> None:
    """A new top-level package must be placed in the layers, or the contracts would not see it."""
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests"}
    assert packages == set(_root_packages())


def test_the_import_contracts_pass() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken"),
    [
        # the vocabulary reaching up into a service
        ("core/vitals.py", "import dashboard.app", "core.vitals -> dashboard.app"),
        # a decoder doing I/O
        ("device_profiles/layout.py", "import psycopg", "device_profiles.layout -> psycopg"),
        # one service importing another (they meet only through MQTT and PostgreSQL)
        ("gateway/queue.py", "import ingest.writer", "gateway.queue -> ingest.writer"),
        # a service importing the composition root
        ("ingest/classify.py", "import hemma.cli", "ingest.classify -> hemma.cli"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong_import: str, broken: str
) -> None:
    tree = _copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = _lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "1 broken" in result.stdout or "BROKEN" in result.stdout
    assert broken in result.stdout
