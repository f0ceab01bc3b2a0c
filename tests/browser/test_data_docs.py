"""GX Data Docs as a person opens them with no internet: styled, rows drawn, icons shown.

The page is opened from disk with every network request refused, so anything it still
fetched from a CDN would be missing (the rows of the index are drawn by bootstrap-table).
"""

from __future__ import annotations

import pytest

from modelkeeper.contracts.spec import get_spec
from modelkeeper.demo import load_flights, week_frame
from modelkeeper.quality.validation import validate_frame


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    frame = week_frame(load_flights(), 0)
    frame.loc[frame.index[:20], "carrier"] = "ZZ"  # one failing expectation to show
    docs = tmp_path_factory.mktemp("docs")
    validate_frame(frame, get_spec("flight_delay"), docs_dir=docs)
    return docs


def _open(browser, url: str, artifacts, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def offline(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    page.route("**/*", offline)
    page.goto(url)
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts / name), full_page=True)
    return page, refused


def test_index_lists_the_validation_offline(browser, site, artifacts):
    page, refused = _open(browser, (site / "index.html").as_uri(), artifacts, "data-docs-index.png")
    assert refused == []
    rows = page.locator("table tbody tr")
    assert rows.count() >= 1, "bootstrap-table drew no rows"
    assert "flight_delay.schema" in rows.first.inner_text()
    # Bootstrap's stylesheet is in: the tab bar is laid out as a row, not a bullet list.
    assert page.locator(".nav-tabs").evaluate("e => getComputedStyle(e).display") == "flex"
    page.close()


def test_validation_page_shows_its_verdicts_offline(browser, site, artifacts):
    (result,) = (site / "validations").rglob("*.html")
    page, refused = _open(browser, result.as_uri(), artifacts, "data-docs-validation.png")
    assert refused == []
    assert "Sampled Unexpected Values" in page.inner_text("body")
    # Font Awesome's font loaded from the page itself: the status icons have a glyph.
    loaded = page.evaluate(
        "document.fonts.ready.then(() => [...document.fonts]"
        ".filter(f => f.family.includes('Font Awesome') && f.status === 'loaded').length)"
    )
    assert loaded >= 1
    page.close()
