"""A small HTTP server on loopback that replays recorded API responses, paging them as the real APIs do.

``routes`` maps a path prefix to a handler ``(path, query, headers) -> (status, headers, body)``;
every request is logged (path and query, never the Authorization value) for the tests to assert on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[str, dict[str, list[str]], Any], tuple[int, dict[str, str], Any]]


class ReplayServer:
    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                server.requests.append((url.path, query))
                for prefix, handler in server.routes.items():
                    if url.path.startswith(prefix):
                        status, headers, body = handler(url.path, query, self.headers)
                        break
                else:
                    status, headers, body = 404, {}, {"detail": "Not found."}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def replay(routes: dict[str, Handler]) -> Iterator[ReplayServer]:
    with ReplayServer(routes) as server:
        yield server
