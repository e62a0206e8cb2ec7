"""The leaderboard page in a real browser: Debian's chromium + chromium-driver driven by Selenium.

The page is built here from small generated, demo-shaped model_info files (``tests/demo_shaped.py``), loaded from
disk (file://, as a researcher opens a shared file), then: a header click sorts the rows numerically (and again in
reverse); the search box filters; a model's detail view shows the per-class table with class names, n and CIs;
the browser console has no errors; a screenshot is saved (``tests/artifacts/leaderboard.png``, git-ignored, or
``$RBLA_ARTIFACTS``). In CI (``CI`` set) a browser that cannot start FAILS the test; elsewhere it is skipped.
``.ci/run`` installs chromium and chromium-driver where they are missing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.demo_shaped import MODELS, write_demo_shaped

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
ARTIFACTS = Path(os.environ.get("RBLA_ARTIFACTS") or Path(__file__).parent / "artifacts")
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1400")


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {reason} (.ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        _unavailable("chromium / chromedriver not found (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="rbla-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in HEADLESS_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # noqa: BLE001 - any start-up failure is "the browser cannot start"
        shutil.rmtree(profile, ignore_errors=True)
        _unavailable(f"chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    from robustbench_labelaug.leaderboard.cli import render

    folder = write_demo_shaped(tmp_path_factory.mktemp("board"), fast=True)
    out = render(folder, html=True, quiet=True)
    return out["html"]


def _rows(driver) -> list[str]:
    return [r.get_attribute("data-key") for r in driver.find_elements("css selector", "table.board tr.row")
            if r.is_displayed()]


def _column(driver, title: str) -> int:
    heads = driver.find_elements("css selector", "table.board > thead > tr > th")
    for i, h in enumerate(heads):
        if h.text.removesuffix(" (%)") == title:
            return i
    raise AssertionError(f"no column {title!r} in {[h.text for h in heads]}")


def _cell_numbers(driver, col: int) -> list[float]:
    rows = [r for r in driver.find_elements("css selector", "table.board tr.row") if r.is_displayed()]
    return [float(r.find_elements("css selector", ":scope > td")[col].get_attribute("data-sort")) for r in rows]


def _severe_console_messages(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_leaderboard_page_in_chromium(browser, page: Path):
    driver = browser
    driver.get(page.as_uri())
    assert driver.title == "digits: Std / Adv / Adv+"
    # the run's facts stated once above the table, not per row
    facts = driver.find_element("css selector", "ul.facts").text
    assert "fast mode: yes" in facts and "n = 120" in facts and "n = 360" in facts
    assert "fast mode" not in driver.find_element("css selector", "table.board tbody").text
    # RobustBench order first: best robust accuracy (lowest AA error) first
    assert _rows(driver) == ["digits_adv_plus", "digits_adv", "digits_std"]

    # sort by clean error: a click sorts ascending (numbers as numbers), ties keep their order
    clean = _column(driver, "clean err")
    header = driver.find_elements("css selector", "table.board > thead > tr > th")[clean]
    assert "(%)" in header.text  # units in the header
    header.click()
    order = _rows(driver)
    values = _cell_numbers(driver, clean)
    assert values == sorted(values)
    assert order == ["digits_std", "digits_adv_plus", "digits_adv"]  # 1.00 < 4.00 = 4.00 (tie kept in order)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()  # again: descending, the tie still in its previous order
    assert _cell_numbers(driver, clean) == sorted(values, reverse=True)
    assert _rows(driver) == ["digits_adv_plus", "digits_adv", "digits_std"]

    # numeric, not lexicographic: "100.00" sorts above "61.00" on the AA column
    aa = _column(driver, "AA err (n=120)")
    driver.find_elements("css selector", "table.board > thead > tr > th")[aa].click()
    assert _rows(driver) == ["digits_adv_plus", "digits_adv", "digits_std"]

    # the search box filters rows
    box = driver.find_element("id", "filter")
    box.send_keys("adv_plus")
    assert _rows(driver) == ["digits_adv_plus"]
    assert driver.find_element("id", "count").text == f"1 of {len(MODELS)} models shown"
    box.clear()
    box.send_keys(" ")  # a key event after clear(): the input listener runs
    assert len(_rows(driver)) == len(MODELS)

    # the detail view: per-class table with class names, n, errors and 95 % CIs; the worst class named
    button = driver.find_element("css selector", "tr.row[data-key='digits_adv'] button.toggle")
    detail = driver.find_element("id", button.get_attribute("aria-controls"))
    assert not detail.is_displayed()
    button.click()
    assert detail.is_displayed() and button.get_attribute("aria-expanded") == "true"
    table = detail.find_element("css selector", "table.classwise")
    heads = [h.text for h in table.find_elements("css selector", ":scope > thead > tr > th")]
    assert heads[:2] == ["class", "n"] and any(h.startswith("95 % CI") for h in heads)
    assert any("PGD-40 (sound)" in h for h in heads)
    body = table.find_elements("css selector", ":scope > tbody > tr")
    assert [r.find_element("css selector", "th").text for r in body] == [str(i) for i in range(10)]
    first = [c.text for c in body[0].find_elements("css selector", "td")]
    assert first[0] == "36"  # class 0's n
    assert first[2].startswith("[") and first[2].endswith("]")  # its CI
    lo, hi = (float(x) for x in first[2].strip("[]").split(","))
    assert 0.0 <= lo <= float(first[1]) <= hi <= 100.0
    assert "worst class" in detail.find_element("css selector", "ul.worst-list").text
    masking = detail.find_element("css selector", "table.masking").text
    assert "pgd_close_to_autoattack" in masking and "gap_ci" in masking and "skipped" in masking
    assert "gaussian noise" in detail.find_element("css selector", "table.corruptions").text
    images = detail.find_elements("css selector", ".plots img")
    assert len(images) == 2
    for img in images:
        assert img.get_attribute("src").startswith("data:image/svg+xml;base64,")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
    # sorting moves the detail with its row
    driver.find_elements("css selector", "table.board > thead > tr > th")[clean].click()
    following = driver.execute_script("return document.querySelector(\"tr.row[data-key='digits_adv']\")"
                                      ".nextElementSibling.id")
    assert following == detail.get_attribute("id")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard.png"
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    shot = ARTIFACTS / "leaderboard_detail.png"
    driver.execute_script("window.scrollTo(0, document.querySelector(\"tr.row[data-key='digits_adv']\")"
                          ".getBoundingClientRect().top + window.scrollY)")
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    assert _severe_console_messages(driver) == []


def test_page_is_offline_and_opens_a_detail_from_its_anchor(browser, page: Path):
    driver = browser
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN, no fetch
    driver.get(page.as_uri() + "#model-g0-digits_std")
    detail = driver.find_element("id", "detail-g0-digits_std")
    assert detail.is_displayed()
    assert _severe_console_messages(driver) == []


@pytest.fixture(scope="module")
def methods_page(tmp_path_factory) -> Path:
    """The page of the committed seven-method run (docs/data/methods: paper titles, venues, every measure): the
    widest board the project renders."""
    from robustbench_labelaug.leaderboard.cli import render

    folder = tmp_path_factory.mktemp("methods")
    shutil.copytree(Path(__file__).parents[1] / "docs" / "data" / "methods", folder, dirs_exist_ok=True)
    return render(folder, html=True, quiet=True, overwrite=True)["html"]


def test_the_main_view_fits_1400_px_with_its_overview_figure(browser, methods_page: Path):
    """At 1 400 px the board needs no sideways scrolling (secondary measures are in the details, long titles are
    clipped with the full text on hover), the overview figure is shown, and no local path is printed."""
    driver = browser
    driver.set_window_size(1400, 1400)
    driver.get(methods_page.as_uri())
    assert driver.execute_script("return window.innerWidth") <= 1400
    page_width, view = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert page_width <= view
    table, box = driver.execute_script("var t = document.querySelector('table.board');"
                                       "return [t.scrollWidth, t.parentElement.clientWidth]")
    assert table <= box, f"the board is {table} px wide in a {box} px box"
    figure = driver.find_element("css selector", "figure.overview img")
    assert figure.is_displayed() and figure.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", figure) > 0
    assert figure.size["width"] >= 600  # legible, not a thumbnail
    heads = [h.text.split("\n")[0] for h in driver.find_elements("css selector", "table.board > thead > tr > th")]
    assert "worst class clean (%)" not in " ".join(heads)  # a secondary measure: in the details
    cfa = driver.find_element("css selector", "tr.row[data-key='digits_adv_cfa']")
    paper = next(td for td in cfa.find_elements("css selector", ":scope > td") if td.get_attribute("title")
                 and "Calibrated" in td.get_attribute("title"))
    assert paper.get_attribute("title") == "CFA: Class-wise Calibrated Fair Adversarial Training"  # full on hover
    assert paper.size["height"] < 60  # one line, not a title wrapped over six
    cfa.find_element("css selector", "button.toggle").click()
    detail = driver.find_element("id", "detail-g0-digits_adv_cfa")
    assert "worst class clean (%)" in detail.find_element("css selector", "dl.more").text
    text = driver.find_element("tag name", "body").text
    assert "config\ndigits.yaml" in detail.text and "/eval_configs/" not in driver.page_source
    assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text
    assert _severe_console_messages(driver) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(ARTIFACTS / "leaderboard_methods.png"))


@pytest.mark.parametrize("fragment", ["%E0%A4%A", "model-%", 'model-x"]', "model-%22%5D%5Bx", "model-\\", "%"])
def test_a_crafted_fragment_throws_nothing_in_the_page(browser, page: Path, fragment):
    """Issue 30: a fragment that is not a valid URI escape, or that holds quotes, must not throw in the page's
    script (it is decoded in a try and compared as a string, never made into a CSS selector)."""
    driver = browser
    driver.get(page.as_uri() + "#" + fragment)
    driver.execute_script("window.location.hash = arguments[0]", fragment)  # the hashchange path too
    assert _severe_console_messages(driver) == []
    assert driver.find_element("css selector", "table.board").is_displayed()
