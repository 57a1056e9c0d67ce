"""The HTTP app: a thin door over `nmtkit.Translator` and the request batcher.

    GET  /health          alive (never needs the key)
    GET  /ready           200 once every model is loaded and its worker runs, else 503 (the
                          model names only with the key, when one is set)
    GET  /v1/models       names, languages, sizes, decoding defaults
    POST /v1/translate    {"model", "text": [...], "beam", "nbest", "alpha", "greedy",
                          "attention"} -> one result per line, in order (`Translation.to_record`)
    GET  /metrics         Prometheus text: requests by outcome, latency, batch sizes, queue
                          depth, worker restarts
    GET  /docs, /redoc, /openapi.json   the API's description (with the key, when one is set)
    GET  /                the page (static/), which shows the attention of the best hypothesis

Every error is a JSON body `{"error": "...", ...}` (ASCII, whatever the request held) with a
4xx/5xx status, mapped here in one place, and counted in the metrics; an unexpected one is a
500 naming its class only. Models are fixed at start, and no request can name a file.

What one request may cost is bounded before any search: the body's size as it streams
(`_Guard`), its lines, characters and `lines x beam x nbest` (`_check_size`), the time its
client takes to send it (`--read-timeout`, headers in `_h11_with_header_timeout`), and its
time in the queue; a request whose client has timed out or gone is dropped before its search.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from nmtkit.errors import UserError
from nmtkit.serve.batcher import Batcher, QueueFull, WorkerFailed
from nmtkit.serve.schemas import (
    ModelInfo,
    ServeSettings,
    TranslateRequest,
    TranslateResponse,
)
from nmtkit.translate import DecodeOptions, Translation, Translator

STATIC = Path(__file__).with_name("static")


class ApiError(Exception):
    """An error answered as `{"error": message}` with `status` (and `headers`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "nmtkit_requests", "Translate requests by outcome", ["outcome"], registry=r
        )
        self.latency = Histogram(
            "nmtkit_request_seconds",
            "Translate request latency",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.batch_sentences = Histogram(
            "nmtkit_batch_sentences",
            "Sentences per batched search",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.batch_tokens = Histogram(
            "nmtkit_batch_tokens",
            "Source tokens per batched search",
            buckets=(16, 64, 256, 1024, 2048, 4096, 8192, 16384, 65536),
            registry=r,
        )
        self.queue_depth = Gauge("nmtkit_queue_depth", "Waiting requests", ["model"], registry=r)
        self.responses = Counter(
            "nmtkit_responses",
            "Answers by path (the app's own; anything else is 'other') and status",
            ["path", "status"],
            registry=r,
        )
        self.restarts = Counter(
            "nmtkit_worker_restarts",
            "Times a model's worker was started again after a failure",
            ["model"],
            registry=r,
        )

    def batch(self, sentences: int, tokens: int) -> None:
        self.batch_sentences.observe(sentences)
        self.batch_tokens.observe(tokens)


def create_app(models: dict[str, Translator], settings: ServeSettings) -> FastAPI:
    """The app serving `models` (name -> Translator; the first is the default)."""
    metrics = Metrics()
    batchers: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, translator in models.items():
            batchers[name] = Batcher(
                translator,
                max_batch_tokens=settings.max_batch_tokens,
                max_wait_s=settings.max_wait_ms / 1000,
                max_queue=settings.max_queue,
                on_batch=metrics.batch,
                on_restart=metrics.restarts.labels(model=name).inc,
            )
            metrics.queue_depth.labels(model=name).set_function(batchers[name].depth)
            metrics.restarts.labels(model=name)  # 0 until the first restart
        yield
        for batcher in batchers.values():  # finish what is queued, then stop the workers
            await asyncio.to_thread(batcher.close)
        batchers.clear()

    # The API's description is served below, behind the key like the API itself.
    app = FastAPI(
        title="nmtkit",
        summary="Recurrent NMT models over HTTP",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(_Guard, settings=settings, metrics=metrics)
    _add_cors(app, settings)
    _add_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """503 while a model is loading or its worker is down (a down worker is started again
        here, so a later probe sees it back)."""
        down = [name for name in models if name not in batchers or not batchers[name].alive()]
        for name in down:
            if name in batchers:
                batchers[name].revive()
        body: dict[str, Any] = {"ready": not down}
        if _authorized(settings.api_key, request):
            body |= {"models": list(models), "down": down}
        return JSONResponse(body, 503 if down else 200)

    @app.get("/v1/models")
    async def list_models() -> list[ModelInfo]:
        return [_model_info(name, translator) for name, translator in models.items()]

    @app.post("/v1/translate", response_model=TranslateResponse)
    async def translate(body: TranslateRequest, request: Request) -> dict[str, Any]:
        name = body.model or next(iter(models))
        if name not in batchers:
            raise ApiError(404, f"unknown model {name!r}; served: {', '.join(models)}")
        options = _options(models[name], body)
        _check_size(body, options, settings)
        try:
            future = batchers[name].submit(body.text, options)
        except QueueFull:
            raise ApiError(503, "the server is busy; retry shortly", {"Retry-After": "1"}) from None
        results = await _wait(future, request, settings.timeout_s)
        # Validated (and documented) once, as the response_model.
        return {"model": name, "results": [r.to_record() for r in results]}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="nmtkit API")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="nmtkit API")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _wait(future: Future[list[Translation]], request: Request, timeout_s: float) -> Any:
    """The batcher's answer; after `timeout_s` a 504, and a 499 once the client has gone. Both
    cancel the request, so that a request still queued never reaches a search. (No
    `asyncio.wait_for`: its TimeoutError is a class of its own on Python 3.10.)"""
    waiting = asyncio.wrap_future(future)
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        done, _ = await asyncio.wait({waiting}, timeout=max(0.0, min(left, POLL_S)))
        if done:
            return waiting.result()
        if left <= POLL_S:
            _abandon(future, waiting)
            raise ApiError(504, f"no answer within {timeout_s:g} s")
        if await request.is_disconnected():
            _abandon(future, waiting)
            raise ApiError(499, "the client closed the connection")


def _abandon(future: Future[Any], waiting: asyncio.Future[Any]) -> None:
    """Cancel a request nobody waits for any more: dropped if still queued; if its search runs
    already, its outcome is read when it comes (else asyncio logs an unread exception)."""
    future.cancel()
    waiting.add_done_callback(lambda done: done.cancelled() or done.exception())


POLL_S = 0.1  # how often a waiting request looks for its client's disconnection


# The request's names of the decoding options, for the errors.
API_NAMES = {"beam_size": "beam", "alpha": "alpha", "nbest": "nbest", "greedy": "greedy"}


def _options(translator: Translator, request: TranslateRequest) -> DecodeOptions:
    """The model's decoding defaults with the request's choices; a bad combination is a 422."""
    try:
        return translator.defaults.replace(
            API_NAMES,
            beam_size=request.beam,
            alpha=request.alpha,
            nbest=request.nbest,
            greedy=request.greedy,
            attention=request.attention,
        )
    except UserError as exc:
        raise ApiError(422, str(exc)) from None


def _check_size(request: TranslateRequest, options: DecodeOptions, settings: ServeSettings) -> None:
    """The request's size against the limits (413), and its text against UTF-8 (422)."""
    if len(request.text) > settings.max_lines:
        raise ApiError(
            413, f"{len(request.text)} lines in one request; at most {settings.max_lines}"
        )
    beam = 1 if options.greedy else options.beam_size
    work = len(request.text) * beam * options.nbest
    if work > settings.max_work:
        raise ApiError(
            413,
            f"{len(request.text)} lines x beam {beam} x nbest {options.nbest} = {work} "
            f"hypotheses to search; at most {settings.max_work} per request (--max-work): "
            "send fewer lines or a smaller beam",
        )
    for number, line in enumerate(request.text, start=1):
        if len(line) > settings.max_chars:
            raise ApiError(
                413, f"line {number} has {len(line)} characters; at most {settings.max_chars}"
            )
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: JSON allows it, text does not
            raise ApiError(
                422,
                f"line {number} cannot be encoded as UTF-8 ({exc.reason} at character "
                f"{exc.start + 1})",
            ) from None


def _model_info(name: str, translator: Translator) -> ModelInfo:
    recipe = translator.recipe
    return ModelInfo(
        name=name,
        src_lang=recipe.data.src_lang,
        tgt_lang=recipe.data.tgt_lang,
        parameters=sum(p.numel() for m in translator.models for p in m.parameters()),
        vocab_size={
            "src": translator.src_tokenizer.vocab_size,
            "tgt": translator.tgt_tokenizer.vocab_size,
        },
        decode=translator.defaults.model_dump(),
    )


def _authorized(api_key: str | None, request: Request) -> bool:
    if api_key is None:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())


class ErrorResponse(JSONResponse):
    """An error's JSON, in ASCII: an error may quote what the request sent (a field's name),
    and a lone surrogate there must not turn the answer into a failure of its own."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def internal_error(exc: BaseException) -> ErrorResponse:
    """An unexpected failure as a JSON 500 naming the class only: no traceback, no path."""
    cause = exc.cause if isinstance(exc, WorkerFailed) else type(exc).__name__
    return ErrorResponse({"error": f"internal error: {cause}"}, 500)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return ErrorResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return ErrorResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": "body", "message": f"{e['msg']} at character {e['loc'][-1]}"}
            if e["type"] == "json_invalid"  # its loc ends with a position, not a field
            else {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "body", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        return ErrorResponse({"error": message, "problems": problems}, 422)


def _add_cors(app: FastAPI, settings: ServeSettings) -> None:
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )


# The app's paths, as metric labels (a path of the client's choosing would be a label without
# bound).
PATHS = frozenset(
    {"/", "/health", "/ready", "/v1/models", "/v1/translate", "/metrics"}
    | {"/docs", "/redoc", "/openapi.json"}
)


class _Guard:
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
        key = self.settings.api_key
        if key is not None and _needs_key(scope["path"]):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {key}".encode()):
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


def model_names(specs: list[str]) -> dict[str, str]:
    """`-m NAME=PATH` or `-m PATH` (named by the run directory, or the checkpoint's stem)."""
    named: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not (sep and name and path and not Path(spec).exists()):
            path, where = spec, Path(spec.rstrip("/"))
            name = where.stem if where.suffix else where.name
            if where.suffix == ".pt" and where.parent.name == "checkpoints":
                name = where.parent.parent.name  # runs/demo/checkpoints/best.pt -> demo
        if name in named:
            raise UserError(f"two served models are named {name!r}; name them with -m NAME=PATH")
        named[name] = path
    return named


def serve(
    specs: list[str],
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    device: str = "auto",
    precision: str = "auto",
    threads: int = 0,
) -> None:
    """`nmtkit serve`: load every model once, then serve until SIGTERM/Ctrl-C (which finish
    the requests in flight and exit 0). `threads`: torch threads for the search (0: the
    cores but one, unless OMP_NUM_THREADS is set)."""
    import uvicorn

    from nmtkit import console

    if not specs:
        raise UserError("give at least one -m MODEL (a run directory, checkpoint or recipe)")
    if threads > 0 or "OMP_NUM_THREADS" not in os.environ:
        # On a CPU, search threads and the HTTP side share the cores: leave them one.
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) - 1))
    models = {
        name: Translator.load(path, device=device, precision=precision)
        for name, path in model_names(specs).items()
    }
    app = create_app(models, settings)
    console.info(f"serving {', '.join(models)} at http://{host}:{port} (docs at /docs)")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=_h11_with_header_timeout(settings.read_timeout_s),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=settings.shutdown_timeout_s,  # type: ignore[arg-type]
    )
    _GracefulServer(config).run()


def _h11_with_header_timeout(timeout_s: float) -> type[H11Protocol]:
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


class _GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT that shut it down gracefully (no new
    connections, requests in flight answered, workers drained) ends with exit code 0: uvicorn
    would raise the signal again after its shutdown, and the process would die of it."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        getattr(self, "_captured_signals", []).clear()
