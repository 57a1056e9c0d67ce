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

What one request may cost is bounded before any search: its body's size as it streams and the
time its client takes to send it (`--read-timeout`), in `guard.py`; its lines, characters and
`lines x beam x nbest` (`_check_size`); and its time in the queue. A request whose client has
timed out or gone is dropped before its search.
"""

from __future__ import annotations

import asyncio
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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from nmtkit.errors import UserError
from nmtkit.serve.batcher import Batcher, QueueFull
from nmtkit.serve.guard import (
    ErrorResponse,
    Guard,
    h11_with_header_timeout,
    internal_error,
    key_matches,
)
from nmtkit.serve.metrics import Metrics
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
    app.add_middleware(Guard, settings=settings, metrics=metrics)
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
        if key_matches(settings.api_key, request.headers.get("authorization", "")):
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

    _add_docs(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_docs(app: FastAPI) -> None:
    """The API's description, served here rather than by FastAPI, so that `Guard` puts it
    behind the key like the API itself."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="nmtkit API")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="nmtkit API")


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
        http=h11_with_header_timeout(settings.read_timeout_s),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=settings.shutdown_timeout_s,  # type: ignore[arg-type]
    )
    _GracefulServer(config).run()


class _GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT that shut it down gracefully (no new
    connections, requests in flight answered, workers drained) ends with exit code 0: uvicorn
    would raise the signal again after its shutdown, and the process would die of it."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        getattr(self, "_captured_signals", []).clear()
