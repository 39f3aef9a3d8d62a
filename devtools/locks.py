"""The dependency lock files: exact versions and hashes, resolved from pyproject.toml's ranges.

``pyproject.toml`` declares ranges: ``[project] dependencies`` (what production runs) and the
``dev`` dependency group (tests, lint, type checks, benchmarks). ``python -m devtools lock``
resolves them into ``requirements/runtime.txt`` and ``requirements/dev.txt`` (uv, one universal
resolution for Linux, macOS and Windows, every file's hash). Setup installs a lock with
``pip install --require-hashes``, so pip can install nothing that is not in it.

``check()`` runs in the lint step: a lock that no longer matches the declared ranges, a
runtime lock whose versions differ from the dev lock's, or a test tool in the runtime lock,
fails it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from devtools.setup import SetupError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
PYTHON_FLOOR = "3.11"
COMMAND = "python -m devtools lock"
# Never in a production install.
TEST_TOOLS = (
    "pytest", "pytest-xdist", "playwright", "pytest-playwright", "selenium", "tox", "schemathesis", "hypothesis",
    "mypy", "ruff",
)

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _compile(output: Path, *extra: str, upgrade: bool) -> None:
    cmd = [
        sys.executable, "-m", "uv", "pip", "compile", str(PYPROJECT.relative_to(ROOT)),
        "--universal", "--python-version", PYTHON_FLOOR, "--generate-hashes", "--strip-extras",
        "--custom-compile-command", COMMAND, "--quiet", "-o", str(output.relative_to(ROOT)), *extra,
    ]
    if upgrade:
        cmd.append("--upgrade")
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SetupError(f"resolving {output.name} failed (see above)")


def lock(*, upgrade: bool = False) -> None:
    """Resolve both locks. Versions already locked stay unless the ranges exclude them or
    ``upgrade`` asks for the newest allowed. The runtime lock takes the dev lock's versions,
    so the tests run exactly what production installs."""
    _compile(DEV_LOCK, "--group", "dev", upgrade=upgrade)
    _compile(RUNTIME_LOCK, "-c", str(DEV_LOCK.relative_to(ROOT)), upgrade=False)


def pins(lock_file: Path) -> dict[str, list[tuple[Version, Marker | None]]]:
    """Every ``name==version`` line of a lock (a name may appear once per marker)."""
    found: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            name, version, marker = match.groups()
            entry = (Version(version), Marker(marker) if marker else None)
            found.setdefault(canonicalize_name(name), []).append(entry)
    return found


def declared() -> tuple[list[Requirement], list[Requirement]]:
    """The runtime and the dev requirements that pyproject.toml declares."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    runtime = [Requirement(r) for r in project["project"]["dependencies"]]
    dev = [Requirement(r) for r in project["dependency-groups"]["dev"]]
    return runtime, dev


def _unmatched(requirements: list[Requirement], locked: dict[str, list[tuple[Version, Marker | None]]],
               lock_file: Path) -> list[str]:
    problems = []
    for req in requirements:
        versions = [version for version, _ in locked.get(canonicalize_name(req.name), [])]
        if not versions:
            problems.append(f"{req.name} is declared but missing from {lock_file.name}")
        for version in versions:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{lock_file.name} has {req.name}=={version}, outside the declared {req}")
    return problems


def check() -> list[str]:
    """What is wrong with the locks, as sentences (empty when they match pyproject.toml)."""
    runtime_req, dev_req = declared()
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    problems = _unmatched(runtime_req, runtime, RUNTIME_LOCK) + _unmatched(runtime_req + dev_req, dev, DEV_LOCK)
    for name, entries in runtime.items():
        if name not in dev:
            problems.append(f"{name} is in {RUNTIME_LOCK.name} but not in {DEV_LOCK.name}")
        elif {v for v, _ in entries} - {v for v, _ in dev[name]}:
            problems.append(f"{name}: {RUNTIME_LOCK.name} and {DEV_LOCK.name} lock different versions")
    problems += [f"{tool} (a test tool) is in {RUNTIME_LOCK.name}" for tool in TEST_TOOLS if tool in runtime]
    if problems:
        problems.append(f"edit the ranges in pyproject.toml if needed, then run `{COMMAND}`")
    return problems
