"""Exception handlers: every error leaves as a short JSON body (API) or a small page (HTML),
never a stack trace. Unexpected errors are logged once here with an id the client also gets.

Bad input is refused by the parameter and body types before it reaches SQL (``portal.schemas``);
should a value the types let through still be refused by PostgreSQL as data (SQLSTATE class 22:
out of range, invalid text, ...), the answer is 400, never 500. A 500 is sent from outside the
middleware stack, so it is given the security headers here.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from nxem.errors import BackendUnavailable
from portal import hardening
from portal.auth import BadCredentials, NotAuthenticated, RateLimited

log = logging.getLogger(__name__)


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None,
          extra: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if extra:
        body["error"].update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    templates = request.app.state.templates
    resp: Response = templates.TemplateResponse(request, "error.html",
                                                {"status": status, "message": message, "user": None},
                                                status_code=status, headers=headers)
    return resp


_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
          422: "invalid_request", 429: "rate_limited"}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        headers = dict(exc.headers) if exc.headers else None
        if wants_html(request):
            return _page(request, exc.status_code, message, headers)
        return _json(exc.status_code, _CODES.get(exc.status_code, "error"), message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
                    for e in exc.errors()]
        if wants_html(request):
            return _page(request, 422, "; ".join(f"{p['where']}: {p['problem']}" for p in problems))
        return _json(422, "invalid_request", "the request does not match the API", extra={"problems": problems})

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return _json(401, "not_authenticated", "sign in: session cookie or 'Authorization: Bearer <token>'",
                     headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        headers = {"Retry-After": str(exc.retry_after_s)}
        if wants_html(request):
            return _page(request, 429, str(exc), headers)
        return _json(429, "rate_limited", str(exc), headers)

    @app.exception_handler(BadCredentials)
    async def bad_credentials(request: Request, exc: BadCredentials) -> Response:
        return _json(401, "bad_credentials", "unknown user or wrong password")

    @app.exception_handler(BackendUnavailable)
    async def unavailable(request: Request, exc: BackendUnavailable) -> Response:
        log.warning("backend unavailable path=%s error=%s", request.url.path, exc)
        headers = {"Retry-After": str(max(1, int(exc.retry_after_s)))}
        if wants_html(request):
            return _page(request, 503, "the database is not reachable; try again shortly", headers)
        return _json(503, "unavailable", "the database is not reachable; try again shortly", headers)

    @app.exception_handler(psycopg.DataError)
    async def bad_data(request: Request, exc: psycopg.DataError) -> Response:
        log.warning("value refused by the database path=%s sqlstate=%s", request.url.path, exc.sqlstate)
        message = "a value of the request is out of range or not valid"
        if wants_html(request):
            return _page(request, 400, message)
        return _json(400, "bad_request", message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.error("unhandled error ref=%s path=%s", ref, request.url.path, exc_info=exc)
        if wants_html(request):
            resp = _page(request, 500, f"internal error (reference {ref})")
        else:
            resp = _json(500, "internal_error", "internal error", extra={"reference": ref})
        for name, value in hardening.security_headers(request.url.path, request.url.scheme == "https"):
            resp.headers[name.decode()] = value.decode()
        return resp


__all__ = ["install", "wants_html", "HTTPException"]
