"""One bad request never takes a model down: a supervised worker, honest `/ready`, bounded work
per request, auth over everything but /health, JSON errors counted in the metrics, and, with a
real server process, streamed body limits, slow clients and SIGTERM with one connected."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from nmtkit.serve import app as app_module
from nmtkit.serve.batcher import Batcher
from nmtkit.translate import Translator
from tests.serve.processes import serving
from tests.serve.test_app import _metric, client_for, offline

JSON = {"content-type": "application/json"}


def assert_serving(client: TestClient, translator: Translator, line: str) -> None:
    """The model still answers a good request with the offline answer, and /ready says so."""
    response = client.post("/v1/translate", json={"text": [line]})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == offline(translator, [line])
    assert client.get("/ready").json()["ready"] is True


def assert_internal_error(response: httpx.Response, cause: str) -> None:
    assert response.status_code == 500, response.text
    assert response.json() == {"error": f"internal error: {cause}"}  # no traceback, no path


# ------------------------------------------------------------------- the supervised worker


def test_a_lone_surrogate_is_a_422_naming_the_line_and_the_model_keeps_serving(
    translator: Translator, sources: list[str]
) -> None:
    """The request that killed the worker for good: JSON allows a lone surrogate, UTF-8 (and
    SentencePiece) do not."""
    with client_for(translator) as client:
        for _ in range(3):
            response = client.post(
                "/v1/translate", content=b'{"text": ["ok", "hello \\ud800"]}', headers=JSON
            )
            assert response.status_code == 422, response.text
            assert "line 2 cannot be encoded as UTF-8" in response.json()["error"]
        assert_serving(client, translator, sources[0])


def tokenizer_raising(
    monkeypatch: pytest.MonkeyPatch, translator: Translator, word: str, exc: BaseException
) -> None:
    """The translator's source tokenizer raises `exc` on any batch of lines holding `word`."""
    real = translator.src_tokenizer.encode

    def encode(lines: Any, *args: Any, **kwargs: Any) -> Any:
        if any(word in line for line in lines):
            raise exc
        return real(lines, *args, **kwargs)

    monkeypatch.setattr(translator.src_tokenizer, "encode", encode)


def test_a_failing_tokenizer_fails_only_its_request(
    translator: Translator, sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer_raising(monkeypatch, translator, "BOOM", TypeError("the tokenizer refuses this"))
    with client_for(translator) as client:
        for _ in range(3):
            assert_internal_error(
                client.post("/v1/translate", json={"text": ["a BOOM"]}), "TypeError"
            )
            assert_serving(client, translator, sources[0])
        metrics = client.get("/metrics").text
    assert _metric(metrics, 'nmtkit_requests_total{outcome="500"}') == 3
    assert _metric(metrics, 'nmtkit_worker_restarts_total{model="tiny"}') == 0


@pytest.mark.parametrize("where", ["search", "splitting"])
def test_a_failing_search_fails_only_its_batch(
    translator: Translator, sources: list[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    real = Translator.translate

    def translate(self: Translator, lines: list[str], *args: Any, **kwargs: Any) -> Any:
        if any("BOOM" in line for line in lines):
            if where == "search":
                raise RuntimeError("the search broke")
            return real(self, lines, *args, **kwargs)[:-1]  # one result short
        return real(self, lines, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate", translate)
    with client_for(translator) as client:
        response = client.post("/v1/translate", json={"text": ["the dog", "BOOM"]})
        assert_internal_error(response, "RuntimeError")
        assert_serving(client, translator, sources[1])


class Die(BaseException):
    """Not an `Exception`: nothing in the worker's loop catches it, so its thread ends."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_started_again_and_ready_says_503_until_then(
    translator: Translator, sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer_raising(monkeypatch, translator, "DIE", Die())
    with client_for(translator) as client:
        assert_internal_error(client.post("/v1/translate", json={"text": ["DIE"]}), "Die")
        deadline = time.monotonic() + 10
        while (ready := client.get("/ready")).status_code == 200:  # the thread ends soon after
            assert time.monotonic() < deadline, "the worker thread did not end"
            time.sleep(0.01)
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "models": ["tiny"], "down": ["tiny"]}
        assert_serving(client, translator, sources[2])  # /ready started it again
        metrics = client.get("/metrics").text
    assert _metric(metrics, 'nmtkit_worker_restarts_total{model="tiny"}') == 1


def test_a_request_sent_while_the_worker_is_dead_starts_it_again(
    translator: Translator, sources: list[str]
) -> None:
    """The batcher's own supervision, below the app: a loop that raises starts again (counted)
    and the request waiting is served; a thread that ended is started again by `submit`."""
    restarts: list[int] = []

    class Flaky(Batcher):
        failures = 1

        def _take(self) -> Any:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("the loop broke")
            return super()._take()

    batcher = Flaky(
        translator,
        max_batch_tokens=1000,
        max_wait_s=0,
        max_queue=8,
        on_restart=lambda: restarts.append(1),
    )
    try:
        options = translator.defaults
        (result,) = batcher.submit([sources[0]], options).result(timeout=30)
        assert result.texts == translator.translate([sources[0]], options)[0].texts
        assert len(restarts) == 1
        # A thread that ended (as if by a BaseException) is replaced on the next submit.
        batcher.close()
        batcher._closing = False
        assert not batcher.alive()
        (result,) = batcher.submit([sources[0]], options).result(timeout=30)
        assert batcher.alive() and len(restarts) == 2
    finally:
        batcher.close()


def test_a_request_that_timed_out_never_reaches_a_search(
    translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Translator.translate
    searched: list[str] = []

    def slow(self: Translator, lines: list[str], *args: Any, **kwargs: Any) -> Any:
        searched.extend(lines)
        time.sleep(0.8)
        return real(self, lines, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate", slow)
    with client_for(translator, max_wait_ms=0, timeout_s=0.3) as client:
        first = threading.Thread(
            target=client.post, args=("/v1/translate",), kwargs={"json": {"text": ["first"]}}
        )
        first.start()
        time.sleep(0.2)  # "first" is in its search
        response = client.post("/v1/translate", json={"text": ["second"]})
        assert response.status_code == 504 and "no answer within 0.3 s" in response.json()["error"]
        first.join(timeout=30)
        time.sleep(1.0)  # the worker is free: "second" would have been searched by now
        metrics = client.get("/metrics").text
    assert searched == ["first"]
    assert _metric(metrics, 'nmtkit_requests_total{outcome="504"}') == 2  # both ran out


# --------------------------------------------------------------------------- bounded work


def test_the_work_of_one_request_is_bounded(translator: Translator, sources: list[str]) -> None:
    with client_for(translator, max_work=40) as client:
        response = client.post("/v1/translate", json={"text": ["a"] * 5, "beam": 4, "nbest": 3})
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert "5 lines x beam 4 x nbest 3 = 60 hypotheses" in error and "at most 40" in error
        ok = {"text": ["a"] * 10, "beam": 4}  # 40: at the bound
        assert client.post("/v1/translate", json=ok).status_code == 200
        greedy = {"text": ["a"] * 40, "greedy": True}  # greedy counts beam 1
        assert client.post("/v1/translate", json=greedy).status_code == 200
        assert_serving(client, translator, sources[0])


# ---------------------------------------------------------------------- auth and JSON errors


def test_with_a_key_the_description_and_the_model_names_need_it(translator: Translator) -> None:
    good = {"authorization": "Bearer s3cret"}
    with client_for(translator, api_key="s3cret") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics", "/v1/models"):
            response = client.get(path)
            assert response.status_code == 401 and "API key" in response.json()["error"], path
            assert client.get(path, headers=good).status_code == 200, path
        assert client.get("/health").status_code == 200  # for probes
        # The key is checked before the body is read: no parse error for a client without it.
        for body in (b'{"text": ["a"', b"[" * 5000, b'{"text": ["\xff"]}'):
            response = client.post("/v1/translate", content=body, headers=JSON)
            assert response.status_code == 401, response.text
        assert client.get("/nowhere").status_code == 401  # nothing is told without the key
        assert client.get("/ready").json() == {"ready": True}  # no names without the key
        assert client.get("/ready", headers=good).json()["models"] == ["tiny"]
        assert "/v1/translate" in client.get("/openapi.json", headers=good).json()["paths"]
    with client_for(translator) as client:  # no key: all open, as before
        assert "/v1/translate" in client.get("/openapi.json").json()["paths"]
        assert "swagger" in client.get("/docs").text.lower()


def test_an_unexpected_error_is_a_json_500_and_counted(
    translator: Translator, sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise ValueError("/secret/path/in/a/message")

    with client_for(translator) as client:
        monkeypatch.setattr(app_module, "_check_size", broken)
        assert_internal_error(client.post("/v1/translate", json={"text": ["a"]}), "ValueError")
        monkeypatch.setattr(app_module, "_model_info", broken)
        assert_internal_error(client.get("/v1/models"), "ValueError")
        monkeypatch.undo()
        assert_serving(client, translator, sources[0])
        metrics = client.get("/metrics").text
    assert _metric(metrics, 'nmtkit_requests_total{outcome="500"}') == 1
    assert _metric(metrics, 'nmtkit_responses_total{path="/v1/models",status="500"}') == 1


def test_errors_are_ascii_json_whatever_the_request_held(translator: Translator) -> None:
    """A field name with a lone surrogate, echoed in the 422, must not break the answer."""
    with client_for(translator) as client:
        for body in (
            b'{"text": ["a"], "\\ud800": 1}',
            b'{"text": ["a"], "\xc3\xa9\\udfff\xf0\x9f\x98\x80": 1}',
            b'{"text": ["a"], "model": "\\ud800"}',
        ):
            response = client.post("/v1/translate", content=body, headers=JSON)
            assert 400 <= response.status_code < 500, response.text
            response.content.decode("ascii")
            assert isinstance(response.json()["error"], str)
        metrics = client.get("/metrics").text
    assert _metric(metrics, 'nmtkit_requests_total{outcome="422"}') == 2
    assert _metric(metrics, 'nmtkit_requests_total{outcome="404"}') == 1


def test_every_answer_is_counted_by_path_and_status(translator: Translator) -> None:
    with client_for(translator) as client:
        client.get("/nowhere/../etc")
        client.get("/v1/models")
        client.post("/v1/translate", json={"text": []})
        metrics = client.get("/metrics").text
    assert _metric(metrics, 'nmtkit_responses_total{path="other",status="404"}') == 1
    assert _metric(metrics, 'nmtkit_responses_total{path="/v1/models",status="200"}') == 1
    assert _metric(metrics, 'nmtkit_responses_total{path="/v1/translate",status="422"}') == 1


# ------------------------------------------------------------------------- a real process


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_answer(sock: socket.socket, timeout: float) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the answer on `sock` (the server closes the connection)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_limits_of_a_real_server(trained: Path, tmp_path: Path) -> None:
    """A chunked body is refused once it passes the limit, without reading the rest; a slow
    body is a 408 and slow headers close the connection; a request whose client has gone is
    dropped before its search."""
    options = ("--read-timeout", "1.5", "--max-body-bytes", "100000")
    with serving(trained / "run", tmp_path / "log", *options, delay=0.6) as (base, _):
        # 1. A chunked body, never finished: the 413 comes after the limit, not at the end.
        sock = connect(base)
        sock.sendall(
            b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"text": ["' + b"a" * 16_000
        sent = 0
        with pytest.raises(OSError):  # the server closes the connection once it has answered
            for _ in range(200):  # 3.2 MB, if it were all read
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                time.sleep(0.002)
        status, body = read_answer(sock, 5) if sent < 3_000_000 else (0, {})
        assert status == 413 and "more than" in body["error"] and "at most 100000" in body["error"]
        assert sent < 1_000_000
        sock.close()

        # 1b. A body declared too large, sent whole by 16 clients at once: each gets its 413
        # (the server reads and drops it before answering; closing a socket with unread data
        # resets it, and the reset lost most of these answers).
        statuses: list[int | str] = []

        def too_large() -> None:
            try:
                body = b'{"text": ["' + b"y" * 190_000 + b'"]}'
                statuses.append(httpx.post(f"{base}/v1/translate", content=body).status_code)
            except httpx.TransportError as exc:
                statuses.append(repr(exc))

        clients = [threading.Thread(target=too_large) for _ in range(16)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=30)
        assert statuses == [413] * 16, statuses

        # 2. A body that stops arriving: 408 after --read-timeout.
        sock = connect(base)
        sock.sendall(
            b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"text": ['
        )
        started = time.monotonic()
        status, body = read_answer(sock, 10)
        assert status == 408 and "did not arrive within 1.5 s" in body["error"]
        assert time.monotonic() - started < 5
        sock.close()

        # 3. Headers that stop arriving: the connection is closed after --read-timeout.
        sock = connect(base)
        sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(1024) == b""  # closed
        assert 1 < time.monotonic() - started < 5
        sock.close()

        # 4. The client of a queued request goes away: it is answered 499 in the metrics and
        # never searched.
        def metrics() -> str:
            return httpx.get(f"{base}/metrics", timeout=10).text

        searched = _metric(metrics(), "nmtkit_batch_sentences_sum")
        first = threading.Thread(
            target=httpx.post,
            args=(f"{base}/v1/translate",),
            kwargs={"json": {"text": ["the dog"]}, "timeout": 30},
        )
        first.start()
        time.sleep(0.3)  # its search runs (slowed down)
        sock = connect(base)
        body = b'{"text": ["the cat"]}'
        sock.sendall(
            b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        time.sleep(0.05)
        sock.close()
        first.join(timeout=30)
        deadline = time.monotonic() + 10
        while 'nmtkit_requests_total{outcome="499"}' not in (text := metrics()):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        time.sleep(1.0)  # the worker is free: the second would have been searched by now
        text = metrics()
        assert _metric(text, 'nmtkit_requests_total{outcome="499"}') == 1
        assert _metric(text, "nmtkit_batch_sentences_sum") == searched + 1
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200


@pytest.mark.parametrize("slow", ["body", "headers"])
def test_sigterm_exits_0_within_the_bound_with_a_slow_client_connected(
    trained: Path, tmp_path: Path, slow: str
) -> None:
    options = ("--read-timeout", "60", "--shutdown-timeout", "2")
    with serving(trained / "run", tmp_path / "log", *options) as (base, proc):
        sock = connect(base)
        sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\n")
        if slow == "body":
            sock.sendall(b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te')
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 2 + 3  # the bound, and a margin for the exit
        sock.close()


def test_the_key_and_the_limits_come_from_the_command_line_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from nmtkit.cli import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(app_module, "serve", lambda specs, settings, **kw: seen.update(s=settings))
    args = ["serve", "-m", "runs/demo", "--max-work", "100", "--read-timeout", "2.5"]
    result = CliRunner().invoke(cli, args, env={"NMTKIT_API_KEY": "from-env"})
    assert result.exit_code == 0, result.output
    settings = seen["s"]
    assert settings.api_key == "from-env"
    assert (settings.max_work, settings.read_timeout_s) == (100, 2.5)
    assert (settings.limit_concurrency, settings.shutdown_timeout_s) == (512, 10.0)
