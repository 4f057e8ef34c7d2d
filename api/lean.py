"""Lean routes: a hot read answered without FastAPI's per-request dependency solving.

FastAPI solves a route's dependency tree on every request: the app state, the token check and its
``HTTPBearer``, each query parameter, each with its cache key and checks. For ``GET /cis/{id}``
that cost more than reading the CI (about 250 of 580 µs in process; bench/api.py asks for 0.4x a
bare hello endpoint). A route whose endpoint carries a lean handler (``@lean(handler)``) keeps its
full FastAPI declaration, so the OpenAPI document, the role x route matrix (which reads the
``require`` dependency from the route table) and the interactive docs see it as before, but its
requests go to ``handler(request)``. The handler must make the same checks by the same functions
(``api.auth.authorize`` for the token and role) and call the same code as the declared endpoint;
errors it raises reach the app's problem+json handlers as any route's do.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

LEAN_HANDLER = "__cmdb_lean_handler__"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
F = TypeVar("F", bound=Callable[..., Any])


def lean(handler: Handler) -> Callable[[F], F]:
    """Mark an endpoint so that a ``LeanRoute`` answers its requests with ``handler``."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, LEAN_HANDLER, handler)
        return endpoint

    return mark


def lean_handler(endpoint: Any) -> Handler | None:
    handler: Handler | None = getattr(endpoint, LEAN_HANDLER, None)
    return handler


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose requests go to its endpoint's lean handler when it has one."""

    def get_route_handler(self) -> Handler:
        handler = lean_handler(self.endpoint)
        return handler if handler is not None else super().get_route_handler()
