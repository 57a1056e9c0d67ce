"""What stands between a client and the app: the API key, the body read with its size and
time bounded, JSON errors (in ASCII) for everything, every answer counted, and uvicorn's h11
connection with a deadline for the headers. Nothing here knows about models or search."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from nmtkit.serve.batcher import WorkerFailed
from nmtkit.serve.metrics import Metrics
from nmtkit.serve.schemas import ServeSettings


def key_matches(api_key: str | None, authorization: str) -> bool:
    """Whether an `Authorization` header value carries the key (always, with no key set)."""
    if api_key is None:
        return True
    return hmac.compare_digest(authorization.encode(), f"Bearer {api_key}".encode())


class ErrorResponse(JSONResponse):
    """An error's JSON, in ASCII: an error may quote what the request sent (a field's name),
    and a lone surrogate there must not turn the answer into a failure of its own."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def internal_error(exc: BaseException) -> ErrorResponse:
    """An unexpected failure as a JSON 500 naming the class only: no traceback, no path."""
    cause = exc.cause if isinstance(exc, WorkerFailed) else type(exc).__name__
    return ErrorResponse({"error": f"internal error: {cause}"}, 500)


# The app's paths, as metric labels (a path of the client's choosing would be a label without
# bound).
PATHS = frozenset(
    {"/", "/health", "/ready", "/v1/models", "/v1/translate", "/metrics"}
    | {"/docs", "/redoc", "/openapi.json"}
)


class Guard:
    """The outermost of the app's own layers (plain ASGI), in front of every request:
    - the API key (`_needs_key`), checked before any of the body is read (401);
    - the body, read before the app sees it, its bytes counted as they arrive (chunked or not:
      at most `max_body_bytes` is ever held, 413 beyond), within `read_timeout_s` (408);
    - anything that escapes the app, answered as a JSON 500;
    - every answer counted by path and status (`nmtkit_responses`; status 0: the client left
      unanswered), and /v1/translate's by outcome, with their latency.
    A request refused before its body was read has up to `max_body_bytes` more of it read and
    dropped before the answer (`_drain`): a socket closed with unread data is reset, and the
    reset can destroy the answer before the client reads it."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.read_timeout_s
        status = 0  # 0: no answer went out (the client left first)

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _drain(receive, deadline, self.settings.max_body_bytes)
                await refusal(scope, receive, counted)
                return
            body = await self._read_body(receive, deadline)
            if isinstance(body, Response):
                await body(scope, receive, counted)
            elif body is not None:
                await self.app(scope, _replay(body, receive), counted)
        except Exception as exc:  # answered here, so that it is counted below
            if status:
                raise  # the answer had begun: nothing better than closing the connection
            await internal_error(exc)(scope, receive, counted)
        finally:
            path = scope["path"]
            known = path if path in PATHS else "/static" if path.startswith("/static/") else None
            self.metrics.responses.labels(path=known or "other", status=str(status)).inc()
            if path == "/v1/translate":
                outcome = "ok" if 0 < status < 400 else str(status or "gone")
                self.metrics.requests.labels(outcome=outcome).inc()
                self.metrics.latency.observe(time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request refused on its headers alone: no key, or too large a body."""
        headers = dict(scope["headers"])
        if _needs_key(scope["path"]):
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not key_matches(self.settings.api_key, given):
                return ErrorResponse(
                    {"error": "this server needs an API key: Authorization: Bearer KEY"},
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length, limit = headers.get(b"content-length", b""), self.settings.max_body_bytes
        if length.isdigit() and int(length) > limit:
            return _too_large(int(length), limit)
        return None

    async def _read_body(self, receive: Receive, deadline: float) -> bytes | Response | None:
        """The whole body; an error to answer instead; None if the client went away."""
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await _receive_by(receive, deadline)
            if message is None:
                return ErrorResponse(
                    {
                        "error": f"the request body did not arrive within "
                        f"{self.settings.read_timeout_s:g} s (--read-timeout)"
                    },
                    408,
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                if more:
                    await _drain(receive, deadline, limit)
                return _too_large(size, limit, more=more)
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)


def _needs_key(path: str) -> bool:
    """Everything needs the key (when one is set) but the probes and the page, which asks for
    it; `/ready` names the models only with it."""
    return path not in ("/health", "/ready", "/") and not path.startswith("/static/")


async def _receive_by(receive: Receive, deadline: float) -> Message | None:
    """The next message from the client, or None at `deadline`."""
    try:
        return await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
    except asyncio.TimeoutError:  # the builtin TimeoutError from 3.11 on, not before
        return None


async def _drain(receive: Receive, deadline: float, budget: int) -> None:
    """Read and drop up to `budget` bytes more of the body: until it ends, the deadline, or a
    disconnection."""
    while budget >= 0:
        message = await _receive_by(receive, deadline)
        if message is None or message["type"] != "http.request":
            return
        if not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


def _too_large(size: int, limit: int, *, more: bool = False) -> ErrorResponse:
    said = f"more than {size}" if more else str(size)
    return ErrorResponse(
        {"error": f"request body of {said} bytes; at most {limit} (--max-body-bytes)"},
        413,
        headers={"Connection": "close"},
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app the body read already, then what the client sends next
    (a disconnection)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def h11_with_header_timeout(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 connection, which closes a connection whose next request's headers are
    not complete `timeout_s` after it opened or answered its last request (uvicorn has no such
    limit: a client sending a header a minute would hold its connection for good)."""

    class Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_headers()

        def _await_headers(self) -> None:
            self.loop.call_later(timeout_s, self._headers_late, self.cycle)

        def _headers_late(self, cycle_then: object) -> None:
            # No request began since (the same cycle, answered or none): the headers are late.
            waiting = self.cycle is cycle_then and (
                self.cycle is None or self.cycle.response_complete
            )
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return Protocol
