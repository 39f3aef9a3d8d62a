"""The fault soak, small: cycles until each kind has run once (start, talk, stop, tab close,
network cut, agent worker SIGKILL, web process SIGTERM/SIGKILL, Redis/PostgreSQL restart and
10 s outage, LiveKit restart; about 15-25 cycles) against the production shape on PostgreSQL,
then nothing lost or left behind, and every web process ready again after each dependency
fault. `./dev.sh soak N`
runs the long version (bench/soak.py says what each cycle and each check does).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.soak import KINDS, passed, print_report, run_soak, soak_config
from devtools.stack import Stack, running_stack

# At most this many: the soak stops once every kind has run (bench/soak.py: within
# FIRST_PHASE x the 13 kinds).
CYCLES = 39
FD_GROWTH_BOUND = 40  # over the run's dozen sessions a leak of several descriptors per session would show


@pytest.fixture(scope="module")
def production_shape(artifacts_dir: Path) -> Iterator[Stack]:
    with running_stack(soak_config(artifacts_dir / "logs" / "soak")) as running:
        yield running


# Its waits are each bounded (a restart 120 s, the end 70 s), but a slow machine can add up
# past the suite's 300 s default.
@pytest.mark.timeout(600)
def test_every_kind_of_fault_loses_nothing_and_leaves_nothing_behind(
    production_shape: Stack, artifacts_dir: Path
) -> None:
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1_000_000))
    report = run_soak(
        production_shape, CYCLES, seed, artifacts_dir / "soak" / f"visitors-{seed}", until_every_kind=True
    )
    print_report(report)
    assert production_shape.database_url.startswith("postgres://")
    assert set(report["faults"]) == set(KINDS), f"seed {seed}: every kind of cycle ran: {report['faults']}"
    assert report["finals_received"] > 0, f"seed {seed}: the visitors received final lines"
    assert passed(report), f"seed {seed}: {report}"
    assert report["cleanup_seconds"]["n"] >= 1
    for name, entry in report["processes"].items():
        first, last = entry["fds"]
        assert last <= first + FD_GROWTH_BOUND, f"seed {seed}: {name} descriptors {first} → {last}"
