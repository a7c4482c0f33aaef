"""The API as ``ordersctl serve`` runs it, plus a hello-world route for the benchmark's baseline.

python bench/serve_app.py --port 8099 --warm 2000   (settings from ORDERS_* as usual)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import falcon
import waitress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ordersctl.api.app import create_app
from ordersctl.api.warmup import warm
from ordersctl.config import load_settings
from ordersctl.logs import setup_logging
from ordersctl.runtime import Runtime


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Hello world: the baseline the order routes are compared with.
        ---
        get:
          summary: Hello world
          responses:
            200: {description: A constant JSON body}
        """
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"hello":"world"}'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--warm", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings()
    setup_logging(settings.log.level, settings.log.format)
    runtime = Runtime(settings)
    parts = create_app(runtime, extra_routes=[("/_bench/hello", Hello())])
    if args.warm:
        warm(runtime, parts.cache, args.warm)
    parts.warmed.set()
    waitress.serve(parts.app, host="127.0.0.1", port=args.port, threads=settings.api.threads, _quiet=True)


if __name__ == "__main__":
    main()
