"""python -m devtools {setup,run,test,converse,soak,lock}: the commands behind dev.sh / dev.ps1."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from devtools import setup
from devtools.stack import ROOT, StackConfig, running_stack

PYTEST_NO_TESTS = 5
# The unit tests spend most of their time waiting on real-time audio, so they share the cores
# well: a worker per core, each test module on one worker (its module fixtures start once).
UNIT_PARALLEL = ["-n", "auto", "--dist", "loadfile"]
LINTED = ["app", "ui", "fakes", "devtools", "tests", "bench", "offline_openai"]
# lint-imports (its console script, run with this interpreter on every platform); it reads
# its contracts from pyproject.toml ([tool.importlinter]).
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
# The type checker reads its file list and settings from pyproject.toml ([tool.mypy]).

# The lock is uv.lock (`uv lock` resolves pyproject.toml's ranges). These files are exported from
# it for installs without uv: production's (no dev group, so no test tool) and the uv that dev.sh
# and dev.ps1 bootstrap with. Each file's header names the `uv export` options that wrote it.
LOCK_EXPORTS = {"requirements/runtime.txt": ["--no-dev"], "requirements/uv.txt": ["--only-emit-package", "uv"]}


def _export(options: list[str]) -> str | None:
    """uv.lock exported with these options (this environment's uv, the locked one); None if it failed."""
    cmd = [sys.executable, "-m", "uv", "export", "--frozen", *options]
    result = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE)
    return result.stdout if result.returncode == 0 else None


def cmd_setup(args: argparse.Namespace) -> int:
    setup.for_tests() if args.tests else setup.for_run()
    print("setup complete")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    server = setup.for_run()
    offline = setup.offline_openai_needed()
    where = "the offline OpenAI-compatible server (no OPENAI_API_KEY)" if offline else "OpenAI or OPENAI_BASE_URL"
    setup.step(f"starting LiveKit, backend and UI (agent services: {where})")
    # Ctrl-C and SIGTERM (e.g. from a process manager) stop everything; SIGINT is set
    # explicitly because a shell starting us in the background leaves it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    config = StackConfig(
        livekit_server=server,
        backend_port=args.backend_port,
        ui_port=args.ui_port,
        offline_openai=offline,
    )
    with running_stack(config) as stack:
        print(
            f"\n  Voice agent ready:  {stack.ui_url}/chat\n"
            f"  backend API:        {stack.backend_url}\n"
            f"  LiveKit:            {stack.livekit_url}\n"
            + (f"  offline OpenAI API: {stack.openai_url}\n" if stack.openai_url else "")
            + f"  logs:               {config.log_dir}\n\n  Press Ctrl-C to stop.\n",
            flush=True,
        )
        try:
            while all(p.poll() is None for p in stack.processes.values()):
                time.sleep(0.5)  # supervise: notice a crashed child
            dead = [n for n, p in stack.processes.items() if p.poll() is not None]
            print(f"stopping: {', '.join(dead)} exited; see its log in {config.log_dir}")
            return 1
        except KeyboardInterrupt:
            print("\nstopping…", flush=True)
    print("stopped")
    return 0


def _pytest(*args: str) -> int:
    code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT)
    if code == PYTEST_NO_TESTS:
        print("pytest collected no tests: treating as a failure", flush=True)
        return 1
    return code


def _tool(*cmd: str) -> bool:
    """Run a check; True when it passed."""
    return subprocess.call(list(cmd), cwd=ROOT) == 0


def lint() -> int:
    """ruff, the import layers, the type checker and the lock files; the number that failed."""
    failures = 0
    setup.step("lint: ruff")
    failures += not _tool(sys.executable, "-m", "ruff", "check", *LINTED)
    setup.step("lint: import layers (lint-imports)")
    failures += not _tool(sys.executable, "-c", LINT_IMPORTS)
    setup.step("lint: types (mypy)")
    failures += not _tool(sys.executable, "-m", "mypy")
    setup.step("lint: uv.lock matches pyproject.toml, requirements/*.txt are its exports")
    failures += not _tool(sys.executable, "-m", "uv", "lock", "--check")
    for name, options in LOCK_EXPORTS.items():
        path = ROOT / name
        if not path.exists() or path.read_text(encoding="utf-8") != _export(options):
            print(f"    {name} is not uv.lock's export: run `./dev.sh lock`", flush=True)
            failures += 1
    return failures


def cmd_lock(args: argparse.Namespace) -> int:
    """Resolve uv.lock (versions already locked stay unless the ranges exclude them or --upgrade
    asks for the newest allowed), then write its exports."""
    setup.step(f"resolving uv.lock, exporting {', '.join(LOCK_EXPORTS)}")
    if not _tool(sys.executable, "-m", "uv", "lock", *(["--upgrade"] if args.upgrade else [])):
        return 1
    for name, options in LOCK_EXPORTS.items():
        if (export := _export(options)) is None:
            return 1
        (ROOT / name).write_text(export, encoding="utf-8", newline="\n")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    # On a fresh machine the LiveKit server and geckodriver builds (minutes of compiling) go
    # on while the lint step and the unit tests run; only the end-to-end tests need them.
    wait_for_builds = setup.for_tests(builds_in_background=True) if args.suite != "lint" else None
    failures = 0
    if args.suite in ("all", "lint"):
        failures += lint()
    if args.suite in ("all", "unit"):
        setup.step("unit tests (a worker per core; `-- -n 0` runs them in this process)")
        failures += _pytest("tests/unit", *UNIT_PARALLEL, *args.pytest_args) != 0
    if wait_for_builds is not None:
        wait_for_builds()
    if args.suite in ("all", "e2e"):
        setup.step("end-to-end tests (real LiveKit, Django, Flask, Chromium)")
        on_failure = ["--screenshot=only-on-failure", f"--output={ROOT / 'artifacts' / 'e2e' / 'failures'}"]
        failures += _pytest("tests/e2e", *on_failure, *args.pytest_args) != 0
    return 1 if failures else 0


def cmd_converse(args: argparse.Namespace) -> int:
    """Scripted conversations in Chromium on a fresh local stack, with a report per turn."""
    setup.for_tests()
    return subprocess.call([sys.executable, "-m", "tests.e2e.conversations", *args.conversation_args], cwd=ROOT)


def cmd_soak(args: argparse.Namespace) -> int:
    """The fault soak (bench/soak.py) on a fresh production-shape stack of its own."""
    setup.for_tests()
    seed = ["--seed", str(args.seed)] if args.seed is not None else []
    return subprocess.call([sys.executable, "-m", "bench.soak", "--cycles", str(args.cycles), *seed], cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(prog="dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="install what is missing")
    p.add_argument("--tests", action="store_true", help="also what the tests need")
    p.set_defaults(func=cmd_setup)
    p = sub.add_parser("run", help="run the voice agent locally")
    p.add_argument("--ui-port", type=int, default=int(os.environ.get("UI_PORT", 5000)))
    p.add_argument("--backend-port", type=int, default=int(os.environ.get("BACKEND_PORT", 8000)))
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("test", help="run the unit and end-to-end tests")
    p.add_argument("--suite", choices=["all", "lint", "unit", "e2e"], default="all")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("converse", help="play the scripted conversations in Chromium and report each turn")
    p.add_argument("conversation_args", nargs=argparse.REMAINDER, help="conversation names (default: all), --json FILE")
    p.set_defaults(func=cmd_converse)
    p = sub.add_parser("soak", help="random faults on the production shape, then check nothing was lost or left open")
    p.add_argument("cycles", nargs="?", type=int, default=50, help="how many cycles (default 50)")
    p.add_argument("--seed", type=int, default=None, help="repeat a run (its seed is printed)")
    p.set_defaults(func=cmd_soak)
    p = sub.add_parser("lock", help="resolve uv.lock from pyproject.toml, export requirements/*.txt from it")
    p.add_argument("--upgrade", action="store_true", help="take the newest versions the ranges allow")
    p.set_defaults(func=cmd_lock)
    args = parser.parse_args()
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except setup.SetupError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
