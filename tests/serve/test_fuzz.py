"""`POST /v1/translate` under random input: whole random JSON values, request-shaped bodies with
random field types and sizes, random Unicode in the text (lone surrogates, NUL, combining and
bidirectional marks, 4-byte characters, long tokens), raw bytes that are not JSON or not UTF-8,
and random headers. After every example: no 5xx, every error a JSON `{"error": ...}` in ASCII,
and the server still serves (a fixed line gets exactly its offline answer, `/ready` is 200).
Where the body is a valid request with random text, the status is predicted exactly from the
limits, and a 200 must equal offline translation. The server's request counter must count
every request sent, by outcome.

Budgets: `EXAMPLES` in the default (repeatable) profile, ten times more with
HYPOTHESIS_PROFILE=fuzz, and `SLOW_EXAMPLES` in the test marked slow (`make test-slow`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from nmtkit.serve.app import create_app
from nmtkit.serve.schemas import ServeSettings
from nmtkit.translate import Translator
from tests.conftest import EN
from tests.serve.test_app import _metric, offline

EXAMPLES = 300 * (10 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1)
SLOW_EXAMPLES = 4000

KEY = "fuzz-key"
GOOD_AUTH = f"Bearer {KEY}"
# Small limits, so that random input reaches each of them; max_work keeps every search cheap.
LIMITS = ServeSettings(
    max_lines=4,
    max_chars=2000,
    max_body_bytes=16384,
    max_work=16,
    max_wait_ms=0,
    api_key=KEY,
)
RTL = "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"  # Hebrew, Arabic


@dataclass
class Served:
    """The one app of this module, its fixed probe and what was sent to it."""

    client: TestClient
    translator: Translator
    probe: str  # a test source line
    probe_answer: list[dict]  # its offline answer
    sent: Counter[str] = field(default_factory=Counter)  # translate requests by outcome

    def post(self, content: bytes, headers: dict[str, str]) -> Any:
        response = self.client.post("/v1/translate", content=content, headers=headers)
        self.sent["ok" if response.status_code < 400 else str(response.status_code)] += 1
        return response

    def outcomes(self) -> Counter[str]:
        """nmtkit_requests_total by outcome, from /metrics."""
        text = self.client.get("/metrics", headers={"authorization": GOOD_AUTH}).text
        counted: Counter[str] = Counter()
        prefix = 'nmtkit_requests_total{outcome="'
        for line in text.splitlines():
            if line.startswith(prefix):
                sample, _, value = line.rpartition(" ")
                counted[sample[len(prefix) : -2]] += int(float(value))
        return counted


@pytest.fixture(scope="module")
def served(translator: Translator, sources: list[str]) -> Iterator[Served]:
    app = create_app({"tiny": translator}, LIMITS)
    with TestClient(app) as client:  # runs the lifespan: the worker starts and stops
        probe = sources[0]
        yield Served(client, translator, probe, offline(translator, [probe]))


# ---------------------------------------------------------------------------- strategies

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
SPECIAL = list(
    "\x00\x01\x7f\x85\t\r\n\u2028\u2029\ufeff\ufffd\uffff"  # controls, separators, BOM
    "\u0301\u0302\u0308\u20dd"  # combining marks
    "\u202e\u202d\u202a\u200f\u200e\u2066\u2069\u200b\u200d"  # bidi and zero-width
    "\u05e9\u05dc\u05d5\u05dd\u0645\u0631\u062d\u0628\u0627"  # Hebrew, Arabic
    "\U0001f600\U0001f64f\U0001f468\U00010000\U0010fffd\U0002a6d6"  # 4-byte characters
    "äßéñ"
)
CHARS = st.one_of(st.sampled_from(SPECIAL), SURROGATES, st.characters(), st.sampled_from("thedog "))
# Long runs of characters the tiny vocabulary does not know: few pieces each, so cheap.
LONG = ["x" * 1500, "\U0001f600" * 400, "\U00010000" * 500, "q" * 2000, "x" * 2001, "ä" * 2001]
SHORT, WORDS = st.text(CHARS, max_size=30), st.lists(st.sampled_from(EN), max_size=8).map(" ".join)
LINE = st.one_of(
    SHORT,
    WORDS,
    SHORT,
    WORDS,
    st.sampled_from(LONG),
    st.tuples(st.sampled_from(EN), st.sampled_from(LONG[:3]), st.text(CHARS, max_size=8)).map(
        " ".join
    ),
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(CHARS, max_size=20),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(CHARS, max_size=8), inner),
    max_leaves=12,
)
INTS = st.one_of(
    st.integers(-2, 70), st.integers(), st.floats(), st.booleans(), st.text(max_size=3), st.none()
)
FIELDS = {
    "model": st.one_of(st.none(), st.just("tiny"), st.text(CHARS, max_size=12), JSON_VALUES),
    "beam": INTS,
    "nbest": INTS,
    "alpha": st.one_of(st.none(), st.floats(-1, 12), st.floats(), st.integers(-2, 12), SCALARS),
    "greedy": st.one_of(st.booleans(), SCALARS),
    "attention": st.one_of(st.booleans(), SCALARS),
}
TEXT = st.one_of(st.lists(LINE, max_size=6), st.lists(SCALARS, max_size=3), SCALARS)
REQUEST_SHAPED = st.tuples(
    st.fixed_dictionaries({"text": TEXT}, optional=FIELDS),
    st.dictionaries(st.text(CHARS, min_size=1, max_size=8), SCALARS, max_size=2),
).map(lambda pair: {**pair[0], **pair[1]})

# How a JSON value becomes bytes: ASCII (a surrogate as \ud800), UTF-8 (a surrogate written as
# its own 3 bytes, which is not UTF-8, but json.loads reads them with "surrogatepass").
ENCODINGS = st.sampled_from(["ascii", "utf-8"])


def encode(value: Any, how: str) -> bytes:
    text = json.dumps(value, ensure_ascii=how == "ascii", allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b'{"text": ["a"',
            b'{"text": ["hello \\ud800"]}',
            b'{"text": ["ok", "\\udc00x"]}',
            b'{"text": ["\\ud83d\\ude00 fine"]}',  # a surrogate pair: one character
            b'{"text": ["\xff\xfe"]}',
            b'{"text": ["\xed\xa0\x80"]}',  # a surrogate in UTF-8 form: not UTF-8
            b'\xef\xbb\xbf{"text": ["a"]}',  # a UTF-8 byte order mark
            b'\xff\xfe{\x00"\x00t\x00e\x00x\x00t\x00"\x00:\x00[\x00]\x00}\x00',  # UTF-16
            b'{"text": ["a"]}\x00',
            b'{"text": ["a"], "text": ["b"]}',
            b'{"text": ["a"], "beam": 1e400}',
            b'{"text": ["a"], "beam": 2.5}',
            b'{"text": ["a"], "nbest": NaN}',
            b'{"text": ["a"], "alpha": Infinity}',
            b"1e999999",
            b"[" * 5000,
            b'{"a":' * 3000,
            b'"\\ud800"',
        ]
    ),
    st.tuples(REQUEST_SHAPED.map(lambda v: encode(v, "ascii")), st.integers(0, 300)).map(
        lambda pair: pair[0][: pair[1]]
    ),
)

ASCII = st.characters(min_codepoint=32, max_codepoint=126)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "APPLICATION/JSON",
            "application/vnd.api+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "",
            "json",
            "application/json;;;",
            "*/*",
        ]
    ),
    st.text(ASCII, max_size=40),
)
BAD_AUTH = st.one_of(
    st.none(),
    st.sampled_from(["Bearer", "Bearer ", f"bearer {KEY}", KEY, f"Bearer {KEY} ", "Basic Zm9v"]),
    st.text(ASCII, max_size=60),
    st.just("Bearer " + "x" * 8000),
)
# one in ten with a bad key (hypothesis favours the ends of a range, hence the middle)
AUTH = st.integers(0, 9).flatmap(lambda n: BAD_AUTH if n == 5 else st.just(GOOD_AUTH))
EXTRA_HEADERS = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).map("x-".__add__),
    st.text(ASCII, max_size=200).map(str.strip),
    max_size=3,
)


def headers_of(content_type: str | None, auth: str | None, extra: dict[str, str]) -> dict:
    headers = dict(extra)
    if content_type is not None:
        headers["content-type"] = content_type
    if auth is not None:
        headers["authorization"] = auth
    return headers


@dataclass
class Case:
    """One request to send, and what is known of its answer."""

    content: bytes
    headers: dict[str, str]
    status: int | None = None  # the exact status, where it follows from the limits
    needle: str = ""  # in the error
    lines: list[str] | None = None  # a valid request's text: a 200 must equal offline
    changes: dict[str, Any] = field(default_factory=dict)  # its decoding options


def loose(content: bytes, headers: dict[str, str]) -> Case:
    """Any body: without the key, a 401 before the body is read, whatever it holds."""
    if headers.get("authorization", "").strip() != GOOD_AUTH:
        return Case(content, headers, status=401, needle="API key")
    return Case(content, headers)


def predicted(lines: list[str], beam: int, attention: bool, how: str) -> Case:
    """A request valid but for its text: the status the limits give, in their order."""
    value: dict[str, Any] = {"text": lines, "beam": beam}
    if attention:
        value["attention"] = True
    content = encode(value, how)
    case = Case(content, {"content-type": "application/json", "authorization": GOOD_AUTH})
    # The lines as the server reads them: in ASCII, a high surrogate before a low one is
    # one character again (a pair); in "UTF-8", both stay lone.
    lines = json.loads(content)["text"]
    surrogate = [any(0xD800 <= ord(c) <= 0xDFFF for c in line) for line in lines]
    if len(content) > LIMITS.max_body_bytes:
        case.status, case.needle = 413, "request body of"
    elif not lines:
        case.status, case.needle = 422, "text"
    elif len(lines) > LIMITS.max_lines:
        case.status, case.needle = 413, f"{len(lines)} lines"
    elif len(lines) * beam > LIMITS.max_work:
        case.status, case.needle = 413, "--max-work"
    else:
        for number, (line, bad) in enumerate(zip(lines, surrogate, strict=True), start=1):
            if len(line) > LIMITS.max_chars:
                case.status, case.needle = 413, f"line {number} has {len(line)} characters"
                break
            if bad:
                case.status, case.needle = 422, f"line {number} cannot be encoded"
                break
        else:
            case.status, case.lines = 200, lines
            case.changes = {"beam_size": beam, "attention": attention}
    return case


CASES = st.one_of(
    st.builds(
        loose,
        st.builds(encode, JSON_VALUES, ENCODINGS),
        st.builds(headers_of, CONTENT_TYPES | st.none(), AUTH, EXTRA_HEADERS),
    ),
    st.builds(
        loose,
        st.builds(encode, REQUEST_SHAPED, ENCODINGS),
        st.builds(headers_of, st.just("application/json") | CONTENT_TYPES, AUTH, EXTRA_HEADERS),
    ),
    st.builds(
        predicted,
        st.lists(LINE, max_size=5),
        st.integers(1, 5),
        st.booleans(),
        ENCODINGS,
    ),
    st.builds(
        loose,
        RAW,
        st.builds(headers_of, st.just("application/json") | CONTENT_TYPES, AUTH, EXTRA_HEADERS),
    ),
)


# ------------------------------------------------------------------------------ the property


def check(served: Served, case: Case) -> None:
    response = served.post(case.content, case.headers)
    status = response.status_code
    event(f"status {status}" + (" (predicted)" if case.status is not None else ""))
    assert status < 500, (status, response.text, case)
    if status >= 400:
        assert response.content.isascii(), response.content
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body
        assert body["error"], body
    else:
        assert status == 200, (status, response.text)
        body = response.json()
        assert body["model"] == "tiny" and isinstance(body["results"], list), body
        assert [r["line"] for r in body["results"]] == list(range(1, len(body["results"]) + 1))
    if case.status is not None:
        assert status == case.status, (status, response.text, case)
        if case.needle:
            assert case.needle in response.json()["error"], (response.text, case)
    if case.lines is not None:
        expected = offline(served.translator, case.lines, **case.changes)
        assert response.json()["results"] == expected, case
    # and the server still serves, exactly as before
    probe = served.post(
        json.dumps({"text": [served.probe]}).encode(),
        {"content-type": "application/json", "authorization": GOOD_AUTH},
    )
    assert probe.status_code == 200, probe.text
    assert probe.json()["results"] == served.probe_answer
    ready = served.client.get("/ready", headers={"authorization": GOOD_AUTH})
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "models": ["tiny"], "down": []}


def run_property(served: Served, examples: int) -> None:
    """The property over `examples` random cases; then the server's request counter must
    equal what was sent, by outcome."""
    before_sent, before_counted = Counter(served.sent), served.outcomes()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=CASES)
    @example(case=loose(b'{"text": ["hello \\ud800"]}', {"authorization": GOOD_AUTH}))
    @example(case=predicted(["hello \ud800"], 1, False, "ascii"))
    @example(case=predicted(["\ud83d\ude00 a pair", "b"], 1, False, "ascii"))  # 200: one 😀
    @example(case=predicted(["\ud83d\ude00 a pair", "b"], 1, False, "utf-8"))  # 422: two
    @example(case=predicted(["fine", "\x00\x00 the dog \x00"], 2, True, "ascii"))
    @example(case=predicted([f"\u202e{RTL}\u200f the \u0301dog\U0001f600"], 3, False, "utf-8"))
    @example(case=predicted(["x" * 1500, "the cat"], 1, False, "utf-8"))
    @example(case=loose(b"[" * 5000, {"content-type": "application/json"}))
    def prop(case: Case) -> None:
        check(served, case)

    prop()
    sent = served.sent - before_sent
    counted = served.outcomes() - before_counted
    assert counted == sent, (counted, sent)


def test_random_requests_get_4xx_json_and_the_server_keeps_serving(served: Served) -> None:
    run_property(served, EXAMPLES)


@pytest.mark.slow
def test_random_requests_many(served: Served) -> None:
    run_property(served, SLOW_EXAMPLES)


# -------------------------------------------------------------------- fixed cases, exactly


@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b'{"text": ["hello \\ud800"]}', 422, "line 1 cannot be encoded"),
        (b'{"text": ["ok", "a\\udfff"]}', 422, "line 2 cannot be encoded"),
        # a surrogate's own 3 bytes (not UTF-8): json.loads reads them as the surrogate
        (b'{"text": ["\xed\xa0\x80"]}', 422, "line 1 cannot be encoded"),
        (b'{"text": ["\xff"]}', 400, "parsing the body"),
        (b"[" * 5000, 400, "parsing the body"),  # deeper than json's recursion limit
        (b'{"text": ["a"', 422, "JSON"),
        (b'{"text": ["a"], "beam": 1e400}', 422, "beam"),
        (b'{"text": ["a"], "alpha": NaN}', 422, "alpha"),
        (json.dumps({"text": ["a"] * 5}).encode(), 413, "5 lines"),
        (json.dumps({"text": ["a", "b"], "beam": 9}).encode(), 413, "--max-work"),
        (json.dumps({"text": ["y" * 20000]}).encode(), 413, "request body of"),
    ],
)
def test_fixed_bad_bodies(served: Served, content: bytes, status: int, needle: str) -> None:
    response = served.post(
        content, {"content-type": "application/json", "authorization": GOOD_AUTH}
    )
    assert response.status_code == status, response.text
    assert response.content.isascii() and needle in response.json()["error"], response.text


def test_nul_and_bidi_text_are_translated_like_offline(served: Served) -> None:
    lines = ["\x00", "the \x00 dog", f"\u202e the cat \u200f {RTL}", "e\u0301" * 10]
    response = served.post(
        json.dumps({"text": lines, "beam": 1}).encode(),
        {"content-type": "application/json", "authorization": GOOD_AUTH},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == offline(served.translator, lines, beam_size=1)
    assert (
        _metric(
            served.client.get("/metrics", headers={"authorization": GOOD_AUTH}).text,
            'nmtkit_worker_restarts_total{model="tiny"}',
        )
        == 0
    )
