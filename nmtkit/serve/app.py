"""The HTTP app: a thin door over `nmtkit.Translator` and the request batcher.

    GET  /health          alive (never needs the key)
    GET  /ready           200 once every model is loaded and its worker runs, else 503
    GET  /v1/models       names, languages, sizes, decoding defaults
    POST /v1/translate    {"model", "text": [...], "beam", "nbest", "alpha", "greedy",
                          "attention"} -> one result per line, in order (`Translation.to_record`)
    GET  /metrics         Prometheus text: requests by outcome, latency, batch sizes, queue depth
    GET  /                the page (static/), which shows the attention of the best hypothesis

Every error is a JSON body `{"error": "...", ...}` with a 4xx/5xx status, mapped here in one
place; models are fixed at start, and no request can name a file.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
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

from nmtkit.errors import UserError
from nmtkit.serve.batcher import Batcher, QueueFull
from nmtkit.serve.schemas import (
    ModelInfo,
    ServeSettings,
    TranslateRequest,
    TranslateResponse,
)
from nmtkit.translate import DecodeOptions, Translator

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
            )
            metrics.queue_depth.labels(model=name).set_function(batchers[name].depth)
        yield
        for batcher in batchers.values():  # finish what is queued, then stop the workers
            await asyncio.to_thread(batcher.close)
        batchers.clear()

    app = FastAPI(title="nmtkit", summary="Recurrent NMT models over HTTP", lifespan=lifespan)
    _add_middleware(app, settings, metrics)
    _add_error_handlers(app)
    auth = Depends(_key_check(settings.api_key))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        loaded = len(batchers) == len(models)
        return JSONResponse({"ready": loaded, "models": list(models)}, 200 if loaded else 503)

    @app.get("/v1/models", dependencies=[auth])
    async def list_models() -> list[ModelInfo]:
        return [_model_info(name, translator) for name, translator in models.items()]

    @app.post("/v1/translate", dependencies=[auth], response_model=TranslateResponse)
    async def translate(request: TranslateRequest) -> dict[str, Any]:
        name = request.model or next(iter(models))
        if name not in batchers:
            raise ApiError(404, f"unknown model {name!r}; served: {', '.join(models)}")
        _check_size(request, settings)
        options = _options(models[name], request)
        try:
            future = batchers[name].submit(request.text, options)
        except QueueFull:
            raise ApiError(503, "the server is busy; retry shortly", {"Retry-After": "1"}) from None
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"no answer within {settings.timeout_s:g} s") from None
        # Validated (and documented) once, as the response_model.
        return {"model": name, "results": [r.to_record() for r in results]}

    @app.get("/metrics", dependencies=[auth])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


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


def _check_size(request: TranslateRequest, settings: ServeSettings) -> None:
    if len(request.text) > settings.max_lines:
        raise ApiError(
            413, f"{len(request.text)} lines in one request; at most {settings.max_lines}"
        )
    for number, line in enumerate(request.text, start=1):
        if len(line) > settings.max_chars:
            raise ApiError(
                413, f"line {number} has {len(line)} characters; at most {settings.max_chars}"
            )


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


def _key_check(api_key: str | None) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise ApiError(
                401,
                "this server needs an API key: Authorization: Bearer KEY",
                {"WWW-Authenticate": "Bearer"},
            )

    return check


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "body", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse({"error": message, "problems": problems}, 422)


def _add_middleware(app: FastAPI, settings: ServeSettings, metrics: Metrics) -> None:
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.middleware("http")
    async def limit_and_count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is None and request.method == "POST":  # chunked: count what arrives
            length = str(len(await request.body()))
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            response: Response = JSONResponse(
                {"error": f"request body of {length} bytes; at most {settings.max_body_bytes}"},
                413,
            )
        else:
            response = await call_next(request)
        if request.url.path == "/v1/translate":
            outcome = "ok" if response.status_code < 400 else str(response.status_code)
            metrics.requests.labels(outcome=outcome).inc()
            metrics.latency.observe(time.perf_counter() - started)
        return response


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
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    _GracefulServer(config).run()


class _GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT that shut it down gracefully (no new
    connections, requests in flight answered, workers drained) ends with exit code 0: uvicorn
    would raise the signal again after its shutdown, and the process would die of it."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        getattr(self, "_captured_signals", []).clear()
