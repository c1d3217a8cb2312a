"""Browser tests: Playwright driving Debian's chromium against pytest-django's live_server.

One browser per session (each test gets a fresh context, i.e. fresh cookies). Chromium is
installed by `./dev test` (apt), never by `playwright install`. Under CI=true a browser that
cannot launch fails the test; elsewhere it skips.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import ROOT, demo_warehouse_at, unavailable

# Playwright's sync API runs an asyncio loop in this thread; Django then refuses ORM calls
# from it (SynchronousOnlyOperation) although they are plain blocking calls here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "browser-test-pw"
END = dt.date(2026, 10, 31)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (./dev test installs it: apt-get install chromium)")
    manager = sync_playwright().start()
    try:
        try:
            instance = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # the launch error names what is wrong with the binary
            unavailable(f"chromium did not start: {exc}")
        yield instance
        instance.close()
    finally:
        manager.stop()


@pytest.fixture(scope="session")
def browser_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:

    path = tmp_path_factory.mktemp("browser-warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=20_000, seed=42)
    return path


@pytest.fixture
def demo_registry(
    transactional_db: None, settings: Any, browser_warehouse: Path, tmp_path: Path
) -> dict[str, Any]:
    """fixtures/ synced over a copy of the small warehouse, events_tracked computed daily since
    August, users with a password: the team members of fixtures/governance.yml and a viewer."""
    from django.contrib.auth import get_user_model

    from registry.services.definitions import definitions_sync
    from semantic.jobs.compute import compute_run_create, compute_run_execute
    from semantic.services import caches_clear
    from semantic.warehouse.config import parse_warehouse_url
    from tally.management.commands.demo import demo_roles_ensure

    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(browser_warehouse, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    # Hashing with the default PBKDF2 costs ~0.3 s per sign-in on 2 shared cores.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    caches_clear()
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    run = compute_run_create(
        metrics=["events_tracked"], start=dt.date(2026, 8, 1), end=END, enqueue=False,
        acting_user=None,
    )  # fmt: skip
    assert compute_run_execute(run_id=run.pk).status == "succeeded"
    users = get_user_model().objects
    users.create_user("viewer")
    for user in users.all():
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    # The roles `tally demo` grants its team members (the viewer stays a viewer).
    assert demo_roles_ensure() > 0
    return {"warehouse": path}


@pytest.fixture
def sign_in(browser: Any, live_server: Any, demo_registry: dict[str, Any]) -> Iterator[Any]:
    """sign_in(username) → a page signed in through the sign-in form, in its own context."""
    contexts: list[Any] = []
    # Script errors, Content-Security-Policy refusals among them, fail the journey.
    errors: list[str] = []

    def open_as(username: str) -> Any:
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        # Generous: a proposal's POST runs its checks, which on a loaded CI machine (two
        # workers and a Spark JVM on two cores) took over 15 s. A wait, not a measurement.
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: _console_error(errors, page.url, message))
        page.goto(f"{live_server.url}/metrics")
        assert "/accounts/login/" in page.url  # pages need a signed-in user
        if len(contexts) == 1:
            shot(page, "sign-in")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/metrics")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def _console_error(errors: list[str], url: str, message: Any) -> None:
    # A 403/404 page the journey opens on purpose logs "Failed to load resource": not a fault.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(f"{url}: {message.text}")


def shot(page: Any, name: str) -> None:
    """Saves a full-page screenshot as a test artifact (var/screenshots/, git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
