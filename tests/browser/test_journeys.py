"""User journeys in a real browser: sign in, search, read a metric and its chart, trace a
point, propose → approve → merge, explore lineage, and what a viewer may not do."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot

pytestmark = [pytest.mark.slow]

OWNER = "mei.tanaka@tally.example"  # product-analytics: owns events_tracked
REVIEWER = "jonas.berg@tally.example"  # product-analytics member


def _until(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.05)


def _chart_marks(page: Any, selector: str) -> int:
    page.wait_for_selector(f"{selector}[data-rendered='1'] svg")
    return int(page.locator(f"{selector} svg .mark-symbol path").count())


def test_sign_in_search_and_read_a_metric_with_its_chart(sign_in: Any) -> None:
    page = sign_in(OWNER)
    shot(page, "catalog")
    # Search as you type: the list narrows without a page load.
    page.fill("#q", "events tracked")
    expect(page.locator("#result-count")).to_contain_text("events tracked")
    assert page.locator("#metric-list > li").count() < 10
    shot(page, "catalog-search")
    page.click("#metric-list a[href='/metrics/events_tracked']")
    page.wait_for_url("**/metrics/events_tracked")
    assert page.locator("h1").inner_text() == "Events tracked"
    assert "In plain words" in page.locator(".meaning").inner_text()
    # The vega chart drew one point per stored day (92 days from August to October).
    assert _chart_marks(page, "#metric-chart") >= 90
    assert page.locator("#metric-sql-text").inner_text().startswith("-- tally release r1")
    page.select_option("#dialect", "snowflake")
    expect(page.locator("#metric-sql-text")).to_contain_text("DATE_TRUNC")
    shot(page, "metric")


def test_trace_a_point_of_the_chart(sign_in: Any) -> None:
    page = sign_in(OWNER)
    page.goto(page.url.replace("/metrics", "/metrics/events_tracked"))
    assert _chart_marks(page, "#metric-chart") > 0
    # A stored value's point: its click opens that value's trace.
    page.locator("#metric-chart svg .mark-symbol path").nth(40).click(force=True)
    page.wait_for_url(re.compile(r".*/values/\d+/trace$"))
    assert page.locator("h1").inner_text() == "Where this number comes from"
    assert "events_tracked" in page.locator("#trace").inner_text()
    assert "metric_time__day" in page.locator("#trace-sql").inner_text()
    shot(page, "trace")


def test_propose_approve_as_another_user_merge_and_see_the_new_version(sign_in: Any) -> None:
    author = sign_in(OWNER)
    base = author.url.rsplit("/metrics", 1)[0]
    author.goto(f"{base}/metrics/events_tracked")
    author.click("#edit-metric")
    author.wait_for_url("**/metrics/events_tracked/edit")
    yaml_text = author.input_value("#id_definition")
    assert "name: events_tracked" in yaml_text
    changed = re.sub(
        r"description: .*", "description: Every event the pipeline delivered.", yaml_text, count=1
    )
    author.fill("#id_definition", changed)
    author.fill("#id_title", "events_tracked: clearer description")
    shot(author, "proposal-edit")
    author.click("#submit-proposal")
    author.wait_for_url(re.compile(r".*/proposals/\d+$"))
    proposal_url = author.url
    assert author.locator("#proposal-state").inner_text() == "Open"
    assert author.locator("#approve-button").count() == 0  # never one's own
    assert (
        "needs an approval from team product-analytics" in author.locator("#blockers").inner_text()
    )

    reviewer = sign_in(REVIEWER)
    reviewer.goto(proposal_url)
    reviewer.fill("#review-body", "Reads well.")
    reviewer.click("#approve-button")
    reviewer.wait_for_selector("#proposal-state:has-text('Approved')")
    shot(reviewer, "proposal-approved")

    author.goto(proposal_url)
    assert author.locator("#merge-button").is_enabled()
    author.click("#merge-button")
    author.wait_for_selector("#proposal-state:has-text('Merged')")
    assert author.locator("#merged-release").inner_text() == "r2"
    shot(author, "proposal-merged")
    author.goto(f"{base}/metrics/events_tracked")
    assert "v1.1" in author.locator(".pagehead").inner_text()
    assert "Every event the pipeline delivered." in author.locator("#def-yaml").inner_text()
    # The stored values came from v1.0: said so, and that a description change kept the numbers.
    note = author.locator("#version-note").inner_text()
    assert "events_tracked v1.0" in note and "v1.1" in note and "did not alter" in note


def test_lineage_explorer_expands_a_node(sign_in: Any) -> None:
    page = sign_in(OWNER)
    base = page.url.rsplit("/metrics", 1)[0]
    page.goto(f"{base}/lineage?node=metric:events_tracked&depth=1")
    before = page.locator("#graph g.gnode").count()
    assert before >= 2
    expandable = page.locator("#graph a.gexpand").first
    node = expandable.get_attribute("data-expand")
    expandable.click()
    # Polled from Python: the page's CSP refuses the eval behind page.wait_for_function.
    _until(lambda: page.locator("#graph g.gnode").count() > before)
    assert node in unquote(page.url)  # the expansion is in the address: shareable, back works
    # Pan and zoom change the view box, not the page.
    svg = page.locator("#graph svg")
    view = svg.get_attribute("viewBox")
    page.click("#graph [data-zoom='in']")
    assert svg.get_attribute("viewBox") != view
    shot(page, "lineage")
    page.locator("#graph g.gnode.focus a").first.click()
    page.wait_for_url("**/metrics/events_tracked")


def test_a_viewer_sees_no_edit_or_approve_buttons(sign_in: Any) -> None:
    author = sign_in(OWNER)
    base = author.url.rsplit("/metrics", 1)[0]
    author.goto(f"{base}/metrics/events_tracked/edit")
    author.fill("#id_title", "events_tracked: draft idea")
    yaml_text = author.input_value("#id_definition")
    author.fill(
        "#id_definition", re.sub(r"label: .*", "label: Events delivered", yaml_text, count=1)
    )
    author.click("#submit-proposal")
    author.wait_for_url(re.compile(r".*/proposals/\d+$"))
    proposal_url = author.url

    viewer = sign_in("viewer")
    viewer.goto(f"{base}/metrics/events_tracked")
    assert viewer.locator("#edit-metric").count() == 0
    # A viewer reads definitions but neither compiles nor (row policies: no tenant) reads the
    # stored totals of every tenant: the page says why instead.
    assert "needs the compile right" in viewer.locator("#sql-area").inner_text()
    assert "query the metric instead" in viewer.locator("#chart-area").inner_text()
    shot(viewer, "metric-as-viewer")
    viewer.goto(proposal_url)
    assert viewer.locator("#approve-button").count() == 0
    assert viewer.locator("#merge-button").count() == 0
    assert "not in a team that reviews" in viewer.locator("#no-review-note").inner_text()
    shot(viewer, "proposal-as-viewer")
    denied = viewer.goto(f"{base}/metrics/events_tracked/edit")
    assert denied is not None and denied.status == 403
    assert "may not propose" in viewer.locator(".errorpage").inner_text()
    shot(viewer, "403")
    explore = viewer.goto(f"{base}/explore?metrics=events_tracked")
    assert explore is not None and explore.status == 403
    assert "your roles (viewer) do not allow it" in viewer.locator(".errorpage").inner_text()
    missing = viewer.goto(f"{base}/metrics/no_such_metric")
    assert missing is not None and missing.status == 404
    shot(viewer, "404")


def test_explore_contracts_runs_and_audits_pages(sign_in: Any) -> None:
    page = sign_in(OWNER)
    base = page.url.rsplit("/metrics", 1)[0]
    page.goto(
        f"{base}/explore?metrics=events_tracked&group_by=metric_time__week&start_time=2026-08-01"
    )
    page.wait_for_selector("#explore-chart[data-rendered='1'] svg")
    assert page.locator("#explore-table tbody tr").count() > 5
    assert page.locator("#download-csv").get_attribute("href").startswith("/explore.csv?")
    shot(page, "explore")
    for path, name in (("/contracts/events", "contract"), ("/runs", "runs"), ("/audits", "audits"),
                       ("/proposals", "proposals")):  # fmt: skip
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        shot(page, name)


def test_explore_two_metrics_by_month_and_plan_draws_one_line_per_plan(sign_in: Any) -> None:
    """Each metric gets its own panel, each plan its own line (they used to zig-zag as one)."""
    page = sign_in(OWNER)
    base = page.url.rsplit("/metrics", 1)[0]
    page.goto(
        f"{base}/explore?metrics=revenue&metrics=mrr&group_by=metric_time__month"
        "&group_by=account__plan&start_time=2026-06-01"
    )
    page.wait_for_selector("#explore-chart[data-rendered='1'] svg")
    plans = {
        cell.strip()
        for cell in page.locator("#explore-table tbody tr td:nth-child(2)").all_inner_texts()
    }
    assert len(plans) >= 2, plans
    lines = page.locator("#explore-chart svg g.mark-line path").count()
    assert lines == 2 * len(plans), (lines, plans)
    shot(page, "explore-two-metrics-by-plan")


def test_catalog_facet_survives_typing(sign_in: Any) -> None:
    """A facet picked in the results fragment stays applied when the search box changes."""
    page = sign_in(OWNER)
    facet = page.locator("aside.facets h3:text-is('domain') + ul a:not(.on)").first
    domain = facet.locator("span").first.inner_text().strip()
    facet.click()
    expect(page).to_have_url(re.compile(f"domain={domain}"))
    expect(page.locator("aside.facets a[aria-current='true']")).to_have_count(1)
    page.fill("#q", domain)
    expect(page).to_have_url(re.compile(f"q={domain}.*domain={domain}|domain={domain}.*q={domain}"))
    expect(page.locator("aside.facets a[aria-current='true']")).to_contain_text(domain)


def test_explore_picker_filter_builder_with_suggested_values_and_release(sign_in: Any) -> None:
    """Search and tick a metric, group by a labelled item, build a filter from a suggested
    value (the semantic layer's dimension values), pick a release, run."""
    page = sign_in(OWNER)
    base = page.url.rsplit("/metrics", 1)[0]
    page.goto(f"{base}/explore")
    page.fill("#metric-search", "revenue")
    visible = page.locator("#metric-picker .pick:visible")
    assert 0 < visible.count() < page.locator("#metric-picker .pick").count()
    page.check("#metric-picker input[value='revenue']")
    page.wait_for_selector("#id_group_by optgroup[label='time']")
    page.select_option("#id_group_by", ["metric_time__month", "account__plan"])
    page.select_option("#fb-dimension", "account__plan")
    page.focus("#fb-value")
    _until(lambda: page.locator("#fb-values option").count() > 0)
    suggested = page.eval_on_selector_all("#fb-values option", "os => os.map(o => o.value)")
    assert "pro" in suggested, suggested
    page.fill("#fb-value", "pro")
    page.click("#fb-add")
    assert page.input_value("#id_where") == "{{ Dimension('account__plan') }} = 'pro'"
    assert page.locator("#id_release option").count() >= 2  # latest + r1
    page.select_option("#id_release", "r1")
    page.click("#run-query")
    page.wait_for_selector("#explore-chart[data-rendered='1'] svg")
    plans = set(page.locator("#explore-table tbody tr td:nth-child(2)").all_inner_texts())
    assert plans == {"pro"}, plans
    shot(page, "explore-builder")


def test_a_numbers_changing_merge_backfills_and_the_page_shows_the_new_version(
    sign_in: Any,
) -> None:
    """Merge a major change of events_tracked: its stored values are recomputed under v2.0 in
    the background; the page shows them, and a value's trace keeps the v1.0 number."""
    author = sign_in(OWNER)
    base = author.url.rsplit("/metrics", 1)[0]
    author.goto(f"{base}/metrics/events_tracked")
    before = author.locator("#metric-chart").get_attribute("aria-label")
    author.click("#edit-metric")
    yaml_text = author.input_value("#id_definition")
    changed = yaml_text.replace(
        "  config:", "  filter: \"{{ Dimension('event__event_type') }} <> 'login'\"\n  config:", 1
    )
    assert changed != yaml_text
    author.fill("#id_definition", changed)
    author.fill("#id_title", "events_tracked: without logins")
    author.click("#submit-proposal")
    author.wait_for_url(re.compile(r".*/proposals/\d+$"))
    proposal_url = author.url
    reviewer = sign_in(REVIEWER)
    reviewer.goto(proposal_url)
    reviewer.fill("#review-body", "Logins are not product use.")
    reviewer.click("#approve-button")
    reviewer.wait_for_selector("#proposal-state:has-text('Approved')")
    author.goto(proposal_url)
    author.click("#merge-button")
    author.wait_for_selector("#proposal-state:has-text('Merged')")
    author.goto(f"{base}/metrics/events_tracked")
    assert "v2.0" in author.locator(".pagehead").inner_text()
    # The backfill ran (tasks run in-process here): no value of v1.0 is shown any more.
    assert author.locator("#version-note").count() == 0
    assert author.locator("#metric-chart").get_attribute("aria-label") == before
    author.goto(f"{base}/runs")
    assert "backfill" in author.locator("main").inner_text()
    author.goto(f"{base}/metrics/events_tracked")
    author.wait_for_selector("#metric-chart[data-rendered='1'] svg")
    # v1.0's numbers, dashed on the same chart, to compare.
    assert "previous definition (v1.0)" in author.locator("#previous-legend").inner_text()
    assert author.locator("#metric-chart svg path[stroke-dasharray]").count() >= 1
    shot(author, "metric-after-backfill")
    href = author.locator("a[href^='/values/']").first.get_attribute("href")
    author.goto(base + href)
    assert author.locator("#superseded").count() == 0
    assert "v1.0 → v2.0" in author.locator("main").inner_text()
    shot(author, "trace-after-backfill")


def test_after_request_changes_the_author_pushes_a_revision_from_the_page(sign_in: Any) -> None:
    author = sign_in(OWNER)
    base = author.url.rsplit("/metrics", 1)[0]
    author.goto(f"{base}/metrics/events_tracked/edit")
    yaml_text = author.input_value("#id_definition")
    author.fill("#id_definition", re.sub(r"label: .*", "label: Events", yaml_text, count=1))
    author.fill("#id_title", "events_tracked: shorter label")
    author.click("#submit-proposal")
    author.wait_for_url(re.compile(r".*/proposals/\d+$"))
    proposal_url = author.url
    reviewer = sign_in(REVIEWER)
    reviewer.goto(proposal_url)
    reviewer.fill("#review-body", "Say what kind of events.")
    reviewer.click("#request-changes-button")
    reviewer.wait_for_selector("#proposal-state:has-text('Changes requested')")
    author.goto(proposal_url)
    author.click("details.revise summary")
    area = author.locator("details.revise textarea")
    area.fill(re.sub(r"label: .*", "label: Product events", area.input_value(), count=1))
    author.click("details.revise button[type=submit]")
    author.wait_for_selector("text=Revision 2 pushed")
    assert author.locator("#proposal-state").inner_text() == "Open"
    assert "Product events" in author.locator("main").inner_text()
    shot(author, "proposal-revision-2")
    reviewer.goto(proposal_url)
    reviewer.fill("#review-body", "Better.")
    reviewer.click("#approve-button")
    reviewer.wait_for_selector("#proposal-state:has-text('Approved')")
    assert "by jonas.berg" in reviewer.locator("#team-approvals").inner_text()


def test_explore_saves_the_query_as_a_saved_query_through_a_proposal(sign_in: Any) -> None:
    page = sign_in(OWNER)
    base = page.url.rsplit("/metrics", 1)[0]
    page.goto(
        f"{base}/explore?metrics=events_tracked&group_by=metric_time__month"
        "&group_by=event__event_type&start_time=2026-08-01"
    )
    page.wait_for_selector("#explore-chart[data-rendered='1'] svg")
    page.click("#save-query summary")
    page.fill("#sq_name", "events_by_type_monthly")
    page.fill("#sq_label", "Events by type, monthly")
    page.select_option("#sq_owner", "product-analytics")
    page.select_option("#sq_domain", "product")
    page.click("#save-query-button")
    page.wait_for_url(re.compile(r".*/proposals/\d+$"))
    text = page.locator("main").inner_text()
    assert "Saved query events_by_type_monthly" in text
    assert "events_by_type_monthly" in text
    # The checks ran on the proposed file: it validates and compiles.
    blockers = page.locator("#blockers").inner_text()
    assert "failed" not in blockers and "error" not in blockers, blockers
    page.click("text=proposed definition")
    definition = page.locator("main pre code").first.inner_text()
    assert "TimeDimension('metric_time', 'month')" in definition
    assert "Dimension('event__event_type')" in definition


def _propose(page: Any, base: str, title: str, pattern: str, replacement: str) -> str:
    page.goto(f"{base}/metrics/events_tracked/edit")
    text = page.input_value("#id_definition")
    page.fill("#id_definition", re.sub(pattern, replacement, text, count=1))
    page.fill("#id_title", title)
    page.click("#submit-proposal")
    page.wait_for_url(re.compile(r".*/proposals/\d+$"))
    return str(page.url)


def test_two_proposals_on_one_metric_the_second_rebases_from_the_page(sign_in: Any) -> None:
    author = sign_in(OWNER)
    base = author.url.rsplit("/metrics", 1)[0]
    first = _propose(author, base, "shorter label", r"label: .*", "label: Events")
    second = _propose(author, base, "clearer text", r"description: .*", "description: All events.")
    # Each proposal and the metric page say that another open proposal changes it too.
    assert "also changes events_tracked" in author.locator("main").inner_text()
    author.goto(f"{base}/metrics/events_tracked")
    assert "2 open proposals change events_tracked" in author.locator("main").inner_text()
    reviewer = sign_in(REVIEWER)
    reviewer.goto(first)
    reviewer.fill("#review-body", "ok")
    reviewer.click("#approve-button")
    reviewer.wait_for_selector("#proposal-state:has-text('Approved')")
    author.goto(first)
    author.click("#merge-button")
    author.wait_for_selector("#proposal-state:has-text('Merged')")
    author.goto(second)
    assert "r2 has been published since" in author.locator("#stale-note").inner_text()
    author.click("#rebase-button")
    author.wait_for_selector("text=Rebased onto r2")
    assert author.locator("#stale-note").count() == 0
    assert "based on r2" in author.locator(".pagehead").inner_text()
    shot(author, "proposal-rebased")
