"""The portal's browser and transport hardening, as plain ASGI middleware around the whole
application (``portal.app`` installs them; they run before routing, so every route, the static
files and every error carry them):

* ``SecurityHeaders``: a strict Content-Security-Policy on every response (scripts, styles,
  images and connections from this origin only, no inline script or style, no plugins, not
  framed by anyone), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (the full URL stays on the portal; ``Origin`` is still sent
  on same-origin posts, which the CSRF check relies on), ``Cross-Origin-Opener-Policy``, and
  HSTS on https. The API description page (``/docs``) loads Swagger UI from its CDN and gets a
  policy naming that host -- still no inline script or style.
* ``SameOrigin``: an unsafe request (POST, PUT, PATCH, DELETE) whose ``Origin`` is another
  host, or that the browser marks as cross-site (``Sec-Fetch-Site``), is refused (403) before
  anything reads its body. Without an ``Origin`` a request needs its CSRF token (checked by the
  routes: the form field, or the ``X-CSRF-Token`` header of a cookie-authenticated API call).
* ``BodyLimit``: a request body over the cap is refused (413) before it is parsed: at once by
  its ``Content-Length``, else by counting the bytes as the application reads them.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'; object-src 'none'")
#: The CDN FastAPI's Swagger UI page loads from (``fastapi.openapi.docs``).
SWAGGER_CDN: Final = "https://cdn.jsdelivr.net"
_DOCS_CSP: Final = (f"default-src 'none'; script-src 'self' {SWAGGER_CDN}; style-src 'self' {SWAGGER_CDN}; "
                    f"img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                    f"base-uri 'none'; object-src 'none'")
_COMMON: Final = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin"))
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def security_headers(path: str, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response to ``path`` carries."""
    csp = _DOCS_CSP if path == "/docs" else _CSP
    out = [(b"content-security-policy", csp.encode()), *_COMMON]
    if https:
        out.append((b"strict-transport-security", b"max-age=31536000"))
    return out


def _error(status: int, code: str, message: str) -> tuple[Message, Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    start, body = _error(status, code, message)
    await send(start)
    await send(body)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope["path"], scope.get("scheme") == "https")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _netloc(value: str) -> str:
    """host[:port] of an origin or Host header, lower-case, without a default port."""
    if "://" in value:
        value = urlsplit(value).netloc
    value = value.strip().lower()
    for default in (":80", ":443"):
        if value.endswith(default):
            return value[: -len(default)]
    return value


class SameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = {name.lower(): value.decode("latin-1") for name, value in scope["headers"]}
            origin = headers.get(b"origin")
            fetch_site = headers.get(b"sec-fetch-site")
            if origin is not None and (origin == "null" or _netloc(origin) != _netloc(headers.get(b"host", ""))):
                await _refuse(send, 403, "forbidden", "cross-origin request refused")
                return
            if fetch_site is not None and fetch_site not in ("same-origin", "none"):
                await _refuse(send, 403, "forbidden", f"{fetch_site} request refused")
                return
        await self.app(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised from ``receive`` inside the application, so its error handlers answer 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over {max_bytes} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over {self.max_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, "too_large", message)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _refuse(send, 413, "too_large", message)
