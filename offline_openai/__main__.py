"""``python -m offline_openai``: check the model files, load the engines, serve until SIGTERM
or SIGINT. Prints one line once listening, which is what a launcher can wait for (or poll
``/healthz``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

from aiohttp import web

from offline_openai import model_files
from offline_openai.app import create_app
from offline_openai.engines import Engines

# One line per request; no header is logged (the Authorization header carries a key).
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m offline_openai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--models", help=f"folder of the model files (default: ${model_files.FOLDER_ENV}, "
                        "else the installed model wheels)")
    return parser.parse_args(argv)


async def serve(engines: Engines, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop listening, finish and close the engines."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(engines), access_log_format=ACCESS_LOG_FORMAT, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"offline_openai ready on http://{host}:{port}/v1", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        await engines.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        files = model_files.verify(model_files.locate(args.models))
    except model_files.ModelFilesError as exc:
        print(f"offline_openai: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    engines = Engines.load(files)
    print(f"offline_openai: engines loaded in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        asyncio.run(serve(engines, args.host, args.port))
    except OSError as exc:  # the port is taken, or the host is not ours
        print(f"offline_openai: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
