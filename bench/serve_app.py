"""The API as ``ordersctl serve`` runs it, plus a hello-world route for the benchmark's baseline.

python bench/serve_app.py --port 8099 --processes 2   (settings from ORDERS_* as usual)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import falcon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ordersctl.api.serving import server
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
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()
    setup_logging(settings.log.level, settings.log.format)
    sock = server.listen("127.0.0.1", args.port)
    server.serve(Runtime(settings), sock, processes=args.processes, extra_routes=[("/_bench/hello", Hello())])


if __name__ == "__main__":
    main()
