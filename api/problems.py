"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

Handlers are installed for our own ``CmdbError`` tree (mapped to statuses by class), for FastAPI's
validation errors (422, with the field path of each error), for Starlette's HTTP errors (404, 405
from routing) and for anything unexpected (500, with no internals in the body; logged here).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cmdb.errors import (
    BadInputError,
    CmdbError,
    ConfigError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from cmdb.store.sqlite_access import StoreBusyError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("cmdb.api")

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 412: "Precondition failed", 413: "Content too large", 415: "Unsupported media type",
          422: "Unprocessable content", 428: "Precondition required", 500: "Internal server error",
          503: "Service unavailable"}


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", examples=["https://cmdb.example/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(None, examples=["no CI matches 'web-99' (tried id, name and identity keys)"])
    instance: str | None = Field(None, examples=["/api/v1/cis/web-99"])
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors, each with its field path.")

    model_config = {"extra": "allow"}


class ApiProblem(Exception):
    """Raised by routes for an answer that is not a CmdbError (412, 409 with extra members ...)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class PreconditionFailedError(CmdbError):
    """A write whose If-Match no longer names the CI's current version."""


class ConflictError(CmdbError):
    """An identity conflict or a write that collides with existing data."""


def problem(status: int, detail: str | None, instance: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: CmdbError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PreconditionFailedError):
        return 412
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, BadInputError):
        return 422
    if isinstance(exc, StoreUnavailableError | StoreBusyError):
        return 503
    if isinstance(exc, StoreError) and ("locked" in str(exc) or "timed out" in str(exc) or "busy" in str(exc)):
        return 503
    if isinstance(exc, StoreError | ConfigError):
        return 500
    return 400


def _path(request: Request) -> str:
    return request.url.path


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(CmdbError)
    async def _cmdb(request: Request, exc: CmdbError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, _path(request), exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return problem(status, str(exc), _path(request), headers)

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, _path(request), exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"path": "/".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        return problem(422, detail or "the request is invalid", _path(request), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        generic = {t.lower() for t in TITLES.values()}
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail.lower() not in generic else None
        if exc.status_code == 404 and detail is None:
            detail = f"nothing at {_path(request)}; see /api/v1/docs"
        if exc.status_code == 405 and detail is None:
            detail = f"{request.method} is not allowed on {_path(request)}"
        return problem(exc.status_code, detail, _path(request), dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, _path(request), type(exc).__name__, exc_info=exc)
        return problem(500, "the server failed to answer this request; the error is in its log", _path(request))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem answers a route may give."""
    return {s: {"model": Problem, "description": TITLES.get(s, "Error"),
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}} for s in statuses}
