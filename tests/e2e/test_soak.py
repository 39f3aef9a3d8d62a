"""The fault soak, small: ~40 random cycles (start, talk, stop, tab close, network cut,
agent worker SIGKILL, web process SIGTERM/SIGKILL, Redis/PostgreSQL restart and 10 s outage,
LiveKit restart) against the production shape on PostgreSQL, then nothing lost or left
behind, and every web process ready again after each dependency fault. `./dev.sh soak N`
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

# Enough for every kind of cycle to run once (bench/soak.py: FIRST_PHASE x the 13 kinds).
CYCLES = 39
FD_GROWTH_BOUND = 40  # over two dozen cycles a leak of one descriptor per session would show


@pytest.fixture(scope="module")
def production_shape(artifacts_dir: Path) -> Iterator[Stack]:
    with running_stack(soak_config(artifacts_dir / "logs" / "soak")) as running:
        yield running


def test_two_dozen_random_faults_lose_nothing_and_leave_nothing_behind(
    production_shape: Stack, artifacts_dir: Path
) -> None:
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1_000_000))
    report = run_soak(production_shape, CYCLES, seed, artifacts_dir / "soak" / f"visitors-{seed}")
    print_report(report)
    assert production_shape.database_url.startswith("postgres://")
    assert set(report["faults"]) == set(KINDS), f"seed {seed}: every kind of cycle ran: {report['faults']}"
    assert report["finals_received"] > 0, f"seed {seed}: the visitors received final lines"
    assert passed(report), f"seed {seed}: {report}"
    assert report["cleanup_seconds"]["n"] >= 1
    for name, entry in report["processes"].items():
        first, last = entry["fds"]
        assert last <= first + FD_GROWTH_BOUND, f"seed {seed}: {name} descriptors {first} → {last}"
