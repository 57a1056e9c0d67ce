"""What crosses the HTTP boundary: request and response models, and the server's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    """`POST /v1/translate`. Unset search options come from the model's recipe (`decode:`),
    exactly as for `nmtkit translate`."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="a served model's name; default: the first")
    text: list[str] = Field(min_length=1, description="lines to translate, in order")
    beam: int | None = Field(None, ge=1, le=64, description="beam size")
    nbest: int = Field(1, ge=1, le=64, description="hypotheses per line")
    alpha: float | None = Field(None, ge=0.0, le=10.0, description="length penalty exponent")
    greedy: bool = Field(False, description="greedy search (no n-best)")
    attention: bool = Field(False, description="the best hypothesis's attention matrix")


class Hyp(BaseModel):
    text: str
    score: float = Field(description="log-probability / GNMT length penalty")
    log_prob: float


class AttentionMatrix(BaseModel):
    source: list[str] = Field(description="source pieces, EOS included")
    target: list[str] = Field(description="target pieces, EOS included")
    weights: list[list[float]] = Field(description="one row per target piece")


class LineResult(BaseModel):
    line: int
    source: str
    nbest: list[Hyp]
    truncated: bool = False
    attention: AttentionMatrix | None = None


class TranslateResponse(BaseModel):
    model: str
    results: list[LineResult]


class ModelInfo(BaseModel):
    name: str
    src_lang: str
    tgt_lang: str
    parameters: int
    vocab_size: dict[str, int]
    decode: dict[str, Any]


@dataclass(frozen=True)
class ServeSettings:
    """Limits and behaviour of one server (the `nmtkit serve` options)."""

    max_lines: int = 64  # lines per request
    max_chars: int = 2000  # characters per line
    max_body_bytes: int = 1 << 20
    max_batch_tokens: int = 6000  # source tokens the worker batches together
    max_wait_ms: float = 5.0  # how long the worker waits for more requests to batch
    max_queue: int = 256  # waiting requests before 503
    timeout_s: float = 60.0  # per request
    max_work: int = 8192  # lines x beam x nbest per request
    read_timeout_s: float = 10.0  # to send the headers, then the body
    keep_alive_s: float = 5.0  # an idle connection's life
    limit_concurrency: int = 512  # connections and requests in progress (uvicorn answers 503)
    shutdown_timeout_s: float = 10.0  # SIGTERM: how long requests in flight may finish
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
