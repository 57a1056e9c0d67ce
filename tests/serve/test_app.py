"""`nmtkit serve`: served = offline, batching across requests, limits and bad input, auth,
metrics, and a clean SIGTERM. The tiny model is conftest's `trained`."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from nmtkit.errors import UserError
from nmtkit.serve.app import create_app, model_names
from nmtkit.serve.schemas import LineResult, ServeSettings
from nmtkit.translate import Translator
from tests.serve.processes import serving


@contextmanager
def client_for(translator: Translator, **settings: Any) -> Iterator[TestClient]:
    app = create_app({"tiny": translator}, ServeSettings(**settings))
    with TestClient(app) as client:  # runs the lifespan: workers start and stop
        yield client


def offline(translator: Translator, lines: list[str], **changes: Any) -> list[dict]:
    options = translator.defaults.replace(**changes)
    return [
        LineResult.model_validate(r.to_record()).model_dump()
        for r in translator.translate(lines, options)
    ]


@pytest.mark.parametrize(
    ("request_options", "changes"),
    [
        ({}, {}),
        ({"beam": 2, "nbest": 2, "alpha": 0.0}, {"beam_size": 2, "nbest": 2, "alpha": 0.0}),
        ({"greedy": True}, {"greedy": True}),
        ({"attention": True, "nbest": 3}, {"attention": True, "nbest": 3}),
    ],
)
def test_served_equals_offline(
    translator: Translator, sources: list[str], request_options: dict, changes: dict
) -> None:
    lines = [*sources[:12], "", "   "]
    with client_for(translator) as client:
        response = client.post("/v1/translate", json={"text": lines, **request_options})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "tiny"
    assert body["results"] == offline(translator, lines, **changes)
    assert [r["line"] for r in body["results"]] == list(range(1, len(lines) + 1))


def test_concurrent_requests_are_batched_and_each_gets_its_own_lines(
    translator: Translator, sources: list[str]
) -> None:
    """Requests that arrive together share one search, and each still gets exactly what it
    would get alone (and offline)."""
    expected = {line: offline(translator, [line])[0] for line in sources[:16]}
    answers: dict[str, dict] = {}
    with client_for(translator, max_wait_ms=300) as client:

        def ask(line: str) -> None:
            answers[line] = client.post("/v1/translate", json={"text": [line]}).json()

        threads = [threading.Thread(target=ask, args=(line,)) for line in expected]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        metrics = client.get("/metrics").text
    assert {line: a["results"][0] for line, a in answers.items()} == expected
    batches = _metric(metrics, "nmtkit_batch_sentences_count")
    assert batches < len(expected), metrics  # fewer searches than requests
    assert _metric(metrics, "nmtkit_batch_sentences_sum") == len(expected)
    assert _metric(metrics, 'nmtkit_requests_total{outcome="ok"}') == len(expected)


def test_batching_off_runs_each_request_alone(translator: Translator, sources: list[str]) -> None:
    with client_for(translator, max_batch_tokens=1, max_wait_ms=100) as client:
        threads = [
            threading.Thread(
                target=client.post, args=("/v1/translate",), kwargs={"json": {"text": [s]}}
            )
            for s in sources[:6]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        metrics = client.get("/metrics").text
    assert _metric(metrics, "nmtkit_batch_sentences_count") == 6


def _metric(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels, if any) in Prometheus text."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    raise AssertionError(f"{name} not in the metrics")


def test_models_ready_health_and_metrics(translator: Translator) -> None:
    with client_for(translator) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"ready": True, "models": ["tiny"], "down": []}
        (info,) = client.get("/v1/models").json()
        assert info["name"] == "tiny" and (info["src_lang"], info["tgt_lang"]) == ("en", "de")
        assert info["parameters"] > 0 and info["decode"]["beam_size"] == 3
        metrics = client.get("/metrics")
        assert "nmtkit_queue_depth" in metrics.text and "nmtkit_request_seconds" in metrics.text
        assert client.get("/").status_code == 200


# ---------------------------------------------------------------------------- bad requests

JSON = {"content-type": "application/json"}
BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "malformed JSON",
        {"content": b'{"text": ["a"', "headers": {"content-type": "application/json"}},
        422,
        "JSON",
    ),
    (
        "not JSON at all",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        422,
        "body",
    ),
    ("text missing", {"json": {"beam": 2}}, 422, "text"),
    ("text not a list", {"json": {"text": "a sentence"}}, 422, "text"),
    ("a line not a string", {"json": {"text": ["ok", 3]}}, 422, "text.1"),
    ("no lines", {"json": {"text": []}}, 422, "text"),
    ("unknown field", {"json": {"text": ["a"], "beem": 3}}, 422, "beem"),
    ("beam 0", {"json": {"text": ["a"], "beam": 0}}, 422, "beam"),
    ("beam too large", {"json": {"text": ["a"], "beam": 1000}}, 422, "beam"),
    ("beam not a number", {"json": {"text": ["a"], "beam": "five"}}, 422, "beam"),
    ("nbest above beam", {"json": {"text": ["a"], "beam": 2, "nbest": 4}}, 422, "nbest 4"),
    ("nbest with greedy", {"json": {"text": ["a"], "greedy": True, "nbest": 2}}, 422, "greedy"),
    ("negative alpha", {"json": {"text": ["a"], "alpha": -1}}, 422, "alpha"),
    ("unknown model", {"json": {"text": ["a"], "model": "../etc/passwd"}}, 404, "served: tiny"),
    ("too many lines", {"json": {"text": ["a"] * 9}}, 413, "9 lines"),
    ("line too long", {"json": {"text": ["a", "x" * 101]}}, 413, "line 2 has 101 characters"),
    ("body too large", {"json": {"text": ["y" * 2000]}}, 413, "request body of"),
]


def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
    translator: Translator,
) -> None:
    settings = {"max_lines": 8, "max_chars": 100, "max_body_bytes": 1000}
    with client_for(translator, **settings) as client:
        for name, kwargs, status, needle in BAD_REQUESTS:
            response = client.post("/v1/translate", **kwargs)
            assert response.status_code == status, (name, response.text)
            assert needle in response.json()["error"], (name, response.text)
            assert client.post("/v1/translate", json={"text": ["the dog"]}).status_code == 200
        for method, path, status in [("get", "/v1/translate", 405), ("get", "/nowhere", 404)]:
            response = getattr(client, method)(path)
            assert response.status_code == status and "error" in response.json()


def test_api_key(translator: Translator) -> None:
    with client_for(translator, api_key="s3cret") as client:
        assert client.get("/health").status_code == 200  # always open
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
            response = client.post("/v1/translate", json={"text": ["a"]}, headers=headers)
            assert response.status_code == 401 and "API key" in response.json()["error"]
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics").status_code == 401
        good = {"authorization": "Bearer s3cret"}
        assert client.post("/v1/translate", json={"text": ["a"]}, headers=good).status_code == 200
        assert client.get("/v1/models", headers=good).status_code == 200


def test_cors_only_when_asked(translator: Translator) -> None:
    preflight = {
        "origin": "http://example.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with client_for(translator) as client:
        response = client.options("/v1/translate", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    with client_for(translator, cors_origins=("http://example.test",)) as client:
        response = client.options("/v1/translate", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "http://example.test"


def test_full_queue_and_timeout(translator: Translator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow search: the queue fills (503 with Retry-After) and a request runs out of time
    (504); the server answers health checks meanwhile and serves again afterwards."""
    real = Translator.translate

    def slow(self: Translator, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate", slow)
    with client_for(translator, max_queue=1, max_wait_ms=0, timeout_s=0.3) as client:
        statuses: list[int] = []
        headers: list[dict] = []

        def ask() -> None:
            response = client.post("/v1/translate", json={"text": ["the dog"]})
            statuses.append(response.status_code)
            headers.append(dict(response.headers))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        assert time.perf_counter() - started < 0.3  # the search does not block the event loop
        for thread in threads:
            thread.join(timeout=30)
        assert 503 in statuses and 504 in statuses, statuses
        assert any(h.get("retry-after") == "1" for h in headers)
        monkeypatch.setattr(Translator, "translate", real)
        time.sleep(1.5)  # let the slow searches already started finish
        assert client.post("/v1/translate", json={"text": ["the dog"]}).status_code == 200


def test_model_names() -> None:
    assert model_names(["runs/demo", "x=runs/other/checkpoints/best.pt"]) == {
        "demo": "runs/demo",
        "x": "runs/other/checkpoints/best.pt",
    }
    assert model_names(["runs/b/checkpoints/best.pt"]) == {"b": "runs/b/checkpoints/best.pt"}
    with pytest.raises(UserError, match="two served models are named 'demo'"):
        model_names(["runs/demo", "other/demo"])


# ------------------------------------------------------------------------- a real process


def test_sigterm_finishes_the_request_in_flight_and_exits_0(trained: Path, tmp_path: Path) -> None:
    with serving(trained / "run", tmp_path / "log", delay=1.5) as (base, proc):
        answer: dict[str, Any] = {}

        def ask() -> None:
            response = httpx.post(f"{base}/v1/translate", json={"text": ["the dog"]}, timeout=30)
            answer.update(status=response.status_code, body=response.json())

        thread = threading.Thread(target=ask)
        thread.start()
        time.sleep(0.7)  # the request is in its (slowed) search now
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        assert proc.wait(timeout=30) == 0
        assert answer["status"] == 200 and answer["body"]["results"][0]["nbest"]


def test_cli_refuses_a_missing_model(tmp_path: Path) -> None:
    from tests.conftest import one_line, run_cli

    result = run_cli("serve", "-m", tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in one_line(result.stderr)


def test_served_records_are_the_jsonl_records(translator: Translator, trained: Path) -> None:
    """Field for field what `nmtkit translate --format jsonl` writes (plus the defaults)."""
    from tests.conftest import run_cli, write_lines

    lines = ["the old man sees the dog", "", "the cat"]
    src = write_lines(trained.parent / "serve-jsonl.en", lines)
    args = ("translate", "-m", trained / "run", "-i", src, "-f", "jsonl", "--nbest", "2")
    result = run_cli(*args, "--precision", "fp32")  # the fixture's precision
    assert result.exit_code == 0, result.stderr
    offline_records = [
        LineResult.model_validate(json.loads(line)).model_dump()
        for line in result.stdout.splitlines()
    ]
    with client_for(translator) as client:
        served = client.post("/v1/translate", json={"text": lines, "nbest": 2}).json()
    assert served["results"] == offline_records
