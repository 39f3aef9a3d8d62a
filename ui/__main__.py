"""python -m ui --host H --port P: the Flask development server for the pages."""

import argparse

from ui import create_app

parser = argparse.ArgumentParser(prog="ui")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5000)
args = parser.parse_args()
create_app().run(host=args.host, port=args.port, threaded=True)
