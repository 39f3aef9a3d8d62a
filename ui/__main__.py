"""python -m ui --host H --port P: the pages on uvicorn, as production serves them (ui.asgi)."""

import argparse

import uvicorn

parser = argparse.ArgumentParser(prog="ui")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5000)
args = parser.parse_args()
# proxy_headers=False: the client address is the TCP peer's (devtools.stack.UVICORN_PROXY_FLAGS).
uvicorn.run("ui.asgi:application", host=args.host, port=args.port, proxy_headers=False)
