"""Phone layouts (390 px wide): no page scrolls sideways, and the catalog's filters come
before its results."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import shot

OWNER = "mei.tanaka@tally.example"
PHONE = {"width": 390, "height": 844}


def _overflow(page: Any) -> int:
    """How many pixels the page is wider than the viewport (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.fixture
def phone(sign_in: Any) -> Any:
    page = sign_in(OWNER)
    page.set_viewport_size(PHONE)
    return page


def test_main_pages_fit_a_phone(phone: Any) -> None:
    base = phone.url.rsplit("/metrics", 1)[0]
    pages = {
        "catalog": "/metrics",
        "metric": "/metrics/events_tracked",
        "explore": "/explore?metrics=revenue&metrics=mrr&group_by=metric_time__month"
        "&group_by=account__plan&start_time=2026-06-01",
        "lineage": "/lineage?node=metric:events_tracked",
        "contract": "/contracts/events",
        "runs": "/runs",
    }
    wide = {}
    for name, path in pages.items():
        phone.goto(base + path)
        if name in ("metric", "explore"):
            phone.wait_for_selector(".chart[data-rendered='1'] svg")
        shot(phone, f"phone-{name}")
        if (extra := _overflow(phone)) > 0:
            wide[name] = extra
    # A proposal page: one opened from the edit page.
    phone.goto(base + "/metrics/events_tracked/edit")
    text = phone.input_value("#id_definition")
    phone.fill("#id_definition", text.replace("label: Events tracked", "label: Events", 1))
    phone.fill("#id_title", "shorter label")
    phone.click("#submit-proposal")
    phone.wait_for_url("**/proposals/*")
    shot(phone, "phone-proposal")
    if (extra := _overflow(phone)) > 0:
        wide["proposal"] = extra
    # The trace of the newest stored value.
    phone.goto(base + "/metrics/events_tracked")
    href = phone.locator("a[href^='/values/']").first.get_attribute("href")
    phone.goto(base + href)
    shot(phone, "phone-trace")
    if (extra := _overflow(phone)) > 0:
        wide["trace"] = extra
    assert wide == {}, f"pages wider than 390 px (extra px): {wide}"


def test_catalog_filters_come_before_the_results_on_a_phone(phone: Any) -> None:
    facets = phone.locator("aside.facets").bounding_box()
    results = phone.locator("#metric-list").bounding_box()
    assert facets is not None and results is not None
    assert facets["y"] < results["y"]


def test_no_template_text_leaks_into_pages(phone: Any) -> None:
    """A multi-line {# #} is not a Django comment: it would show on the page."""
    base = phone.url.rsplit("/metrics", 1)[0]
    for path in ("/metrics", "/metrics/events_tracked", "/explore", "/proposals"):
        phone.goto(base + path)
        text = phone.locator("body").inner_text()
        assert (
            "{#" not in text and "{%" not in text and "{{" not in text.replace("{{ Dimension", "")
        ), path
