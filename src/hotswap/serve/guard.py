"""``Guard``: the ASGI layer in front of the service: hosts, origins, keys, body size and strict JSON.

Every request passes these checks in order, each refusal a JSON ``{"detail": ...}`` that names the problem and
never echoes the input:

1. **Host allow-list** (DNS rebinding): the ``Host`` header's name must be one of ``allowed_hosts`` (by default
   the loopback names and the address the server binds) -> 400.
2. **Origin** (cross-site requests from a web page): a request that carries an ``Origin`` header is refused
   unless that origin's host is allowed too -> 403. Browsers add it to every cross-site POST, so a form on a
   foreign page cannot drive the control routes, keys or no keys.
3. **Keys**: with an admin key set, every route but ``/healthz`` needs ``Authorization: Bearer KEY``; the read
   key (if set) opens the read routes only (``READ_ROUTES``: search, status, metrics, the API docs), the admin
   key opens everything. No key -> 401 (with ``WWW-Authenticate: Bearer``), a wrong key -> 403. Keys are
   compared in constant time (``hmac.compare_digest``).
4. **Body size**: counted as the bytes arrive (``Content-Length`` or chunked alike); over ``max_body`` -> 413
   at once, the rest is not read.
5. **Strict JSON**: a JSON body must be UTF-8 and standard JSON: ``NaN``, ``Infinity``, numbers that overflow
   a float (``1e400``) and lone surrogates (``"\\ud800"``) -> 400, before any handler sees them (a body that is
   not JSON at all is left to the route's validation: 422).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1", "testserver")
OPEN_ROUTES = ("/healthz",)
READ_ROUTES = ("/search", "/status", "/metrics", "/docs", "/openapi.json", "/redoc", "/documents/")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class RejectedJSON(ValueError):
    """A body that is not strict JSON (the message says why, without quoting it)."""


def _no_constant(name: str) -> Any:
    raise RejectedJSON(f"{name} is not a JSON number; send finite numbers only")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise RejectedJSON("a number in the body overflows a 64-bit float; send finite numbers only")
    return value


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RejectedJSON("a string in the body holds a lone surrogate (invalid Unicode)") from None
    elif isinstance(value, dict):
        for key, v in value.items():
            _check_text(key)
            _check_text(v)
    elif isinstance(value, list):
        for v in value:
            _check_text(v)


def check_json(body: bytes) -> None:
    """Raise ``RejectedJSON`` unless ``body`` is standard JSON in UTF-8 with finite numbers and valid strings."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedJSON("the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RejectedJSON:
        raise
    except ValueError:  # not JSON at all: the route's own validation answers 422, naming the position
        return
    _check_text(value)


def host_name(host: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"example.org:80"`` -> ``"example.org"`` (lower case)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware applying the checks of the module docstring to ``app``."""

    def __init__(self, app: Any, *, admin_key: str | None = None, read_key: str | None = None,
                 allowed_hosts: Iterable[str] = LOOPBACK, max_body: int = 1 << 20) -> None:
        if read_key and not admin_key:
            raise ValueError("a read key needs an admin key too: without one every client would be an admin")
        self.app, self.max_body = app, int(max_body)
        self.admin_key, self.read_key = admin_key or None, read_key or None
        self.allowed_hosts = {host_name(h) for h in allowed_hosts} | set(LOOPBACK)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        body, error = await self._read_body(receive, headers)
        if error is not None:
            await _reply(send, *error)
            return
        if body and "json" in headers.get("content-type", "") and scope.get("method") in ("POST", "PUT", "PATCH",
                                                                                          "DELETE"):
            try:
                check_json(body)
            except RejectedJSON as e:
                await _reply(send, 400, str(e))
                return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, dict] | None:
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            return 400, ("the Host header names a host this server does not answer for; add it with "
                         "--allow-host"), {}
        origin = headers.get("origin")
        if origin is not None and host_name(origin.split("://", 1)[-1]) not in self.allowed_hosts:
            return 403, "cross-origin requests are refused (the Origin header names another site)", {}
        path = scope.get("path", "")
        if self.admin_key is None or path in OPEN_ROUTES:
            return None
        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return 401, "this server needs a key: send 'Authorization: Bearer KEY'", {"www-authenticate": "Bearer"}
        key = key.strip()
        if _same(key, self.admin_key):
            return None
        reading = path.startswith(READ_ROUTES) and (scope.get("method") in ("GET", "HEAD") or path == "/search")
        if self.read_key is not None and _same(key, self.read_key):
            return None if reading else (403, "the read key may search and read status only; this route needs "
                                              "the admin key", {})
        return 403, "wrong key", {}

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> tuple[bytes, tuple | None]:
        length = headers.get("content-length")
        too_big: tuple[int, str, dict[str, str]] = (
            413, f"request body over the {self.max_body}-byte limit; send fewer or shorter texts", {})
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return b"", too_big
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return bytes(body), None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return b"", too_big
        return bytes(body), None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the original channel (disconnects)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _reply(send: Send, status: int, detail: str, extra: dict | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
