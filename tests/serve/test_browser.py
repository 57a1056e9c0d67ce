"""The page at `/` in a real browser (headless Chromium through Selenium): it translates a
sentence and shows the attention heatmap (one cell per target x source piece, as the API
returns them), the n-best list and greedy vs beam; behind `--api-key` it asks for the key.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package; skipped without.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.processes import serving

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the tests skip
    webdriver = None

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMEDRIVER = "/usr/bin/chromedriver"
SENTENCE = "the old man sees the dog"
SCREENSHOT = Path("/tmp/nmtkit-page.png")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module", autouse=True)
def browser_installed() -> str:
    """The Chromium binary; skips (before the model is trained) when anything is missing."""
    if webdriver is None:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    if not os.access(CHROMEDRIVER, os.X_OK):
        pytest.skip(f"no {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium chromium-driver)")
    return binary


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest) -> Path:
    """The tiny model's run directory (conftest's `trained`, ~1 minute to train), asked for
    only here so that a missing browser skips the tests before any training."""
    return Path(request.getfixturevalue("trained")) / "run"


@contextmanager
def chrome(binary: str) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Any, what: str, timeout: float = 60) -> Any:
    """WebDriverWait for `condition`; on timeout, say what was awaited and what the page shows."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except Exception as exc:
        error = driver.find_element(By.ID, "error").text
        raise AssertionError(f"waited {timeout} s for {what}; error box: {error!r}") from exc


def visible(driver: Any, css: str) -> bool:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(found) and found[0].is_displayed()


def translate_on_page(driver: Any, sentence: str) -> None:
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"), "the models")
    wait(driver, lambda d: d.find_element(By.ID, "beam").get_attribute("value"), "a beam size")
    source = driver.find_element(By.ID, "source")
    source.clear()
    source.send_keys(sentence)
    driver.find_element(By.ID, "translate").click()
    wait(
        driver,
        lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, ".translation") if t.text.strip()],
        "a translation",
    )


def screenshot(driver: Any, path: Path) -> None:
    """The whole page, not just the window (Chromium's DevTools screenshot beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    shutil.copyfile(path, SCREENSHOT)


def test_page_translates_and_shows_attention_nbest_and_greedy_vs_beam(
    browser_installed: str, run: Path, tmp_path: Path
) -> None:
    with serving(run, tmp_path / "server.log") as (base, _), chrome(browser_installed) as d:
        d.get(f"{base}/")
        assert d.title.startswith("nmtkit")
        translate_on_page(d, SENTENCE)
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell"), "the heatmap")

        # the same request through the API: the heatmap is its attention matrix
        beam = int(d.find_element(By.ID, "beam").get_attribute("value"))
        response = httpx.post(
            f"{base}/v1/translate",
            json={"text": [SENTENCE], "beam": beam, "nbest": min(beam, 5), "attention": True},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        result = response.json()["results"][0]
        rows, cols = len(result["attention"]["target"]), len(result["attention"]["source"])

        translations = d.find_elements(By.CSS_SELECTOR, "#output .translation")
        assert len(translations) == 1
        assert translations[0].text == result["nbest"][0]["text"] != ""

        heatmap = d.find_element(By.ID, "heatmap")
        assert heatmap.tag_name == "svg"
        assert (heatmap.get_attribute("data-rows"), heatmap.get_attribute("data-cols")) == (
            str(rows),
            str(cols),
        )
        cells = d.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell")
        assert len(cells) == rows * cols
        hover = cells[0].find_element(By.TAG_NAME, "title").get_attribute("textContent")
        first = result["attention"]["source"][0], result["attention"]["target"][0]
        assert hover.startswith("{} → {}: ".format(*first))

        outputs = d.find_elements(By.CSS_SELECTOR, "#greedy-vs-beam .output")
        assert len(outputs) == 2 and all(o.text.strip() for o in outputs)
        assert d.find_element(By.CSS_SELECTOR, "#greedy-vs-beam .verdict").text
        nbest = d.find_elements(By.CSS_SELECTOR, "#nbest li")
        assert 1 <= len(nbest) <= min(beam, 5)
        assert not visible(d, "#error")

        screenshot(d, tmp_path / "page.png")


def test_page_asks_for_the_api_key(browser_installed: str, run: Path, tmp_path: Path) -> None:
    with (
        serving(run, tmp_path / "server.log", "--api-key", "SECRET") as (base, _),
        chrome(browser_installed) as d,
    ):
        d.get(f"{base}/")
        wait(d, lambda d: visible(d, "#api-key"), "the key prompt")
        d.find_element(By.ID, "api-key").send_keys("wrong")
        d.find_element(By.ID, "api-key-submit").click()
        wait(d, lambda d: "refused" in d.find_element(By.ID, "auth-message").text, "a refusal")
        assert visible(d, "#api-key")

        d.find_element(By.ID, "api-key").send_keys("SECRET")
        d.find_element(By.ID, "api-key-submit").click()
        translate_on_page(d, SENTENCE)
        assert not visible(d, "#api-key")
        assert d.execute_script("return sessionStorage.getItem('nmtkit-api-key')") == "SECRET"
        assert not visible(d, "#error")
