"""The Dagster UI in a real browser, for the end-to-end test: Debian's Chromium (`/usr/bin/chromium`, the
`chromium` package) driven by Playwright's sync API. Nothing is downloaded at run time; Playwright's own
browser builds are never used.

A machine without Chromium skips the browser part, naming the command that installs it; in CI (`CI=true`)
a missing browser is a failure (`.ci/run` installs it first, with `scripts/install-browser`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: without the background-networking flags Chromium keeps calling Google's services,
# which a closed network refuses many times a second.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_COMMAND = "scripts/install-browser (apt-get install -y --no-install-recommends chromium)"
# Where the screenshots go when set (the README's images: docs/screenshots); otherwise the test's tmp_path.
SCREENSHOTS_VAR = "UNIFIED_ASSETS_SCREENSHOTS_DIR"
VIEWPORT = {"width": 1440, "height": 900}
# The UI asks a first visitor on localhost to join the community; a returning user has dismissed it.
DISMISS_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', '\"1\"')"


def require_chromium() -> None:
    """Skip (or, in CI, fail) the calling test when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    reason = (
        f"the browser part of the end-to-end test needs Debian's Chromium at {CHROMIUM}; "
        f"install it with {INSTALL_COMMAND}"
    )
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def screenshots_dir(default: Path) -> Path:
    configured = os.environ.get(SCREENSHOTS_VAR, "").strip()
    directory = Path(configured).expanduser().resolve() if configured else default
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def asset_path(key: Sequence[str]) -> str:
    return "/assets/" + "/".join(key)


class DagsterUi:
    """One headless Chromium on the Dagster UI at `url`. Each `step` that fails leaves a screenshot and the
    page's text in `failures`, and says where they are."""

    def __init__(self, url: str, screenshots: Path, failures: Path, timeout_s: float = 60):
        self.url = url.rstrip("/")
        self.screenshots = screenshots
        self.failures = failures
        self.timeout_ms = timeout_s * 1000

    def __enter__(self) -> DagsterUi:
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
            )
            context = self._browser.new_context(viewport=VIEWPORT)
            context.add_init_script(DISMISS_COMMUNITY_DIALOG)
            context.set_default_timeout(self.timeout_ms)
            expect.set_options(timeout=self.timeout_ms)
            self.page: Page = context.new_page()
        except BaseException:
            self._playwright.stop()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    @contextmanager
    def step(self, name: str) -> Iterator[Page]:
        try:
            yield self.page
        except Exception as error:
            self.failures.mkdir(parents=True, exist_ok=True)
            shot, text = self.failures / f"{name}.png", self.failures / f"{name}.txt"
            try:
                self.page.screenshot(path=shot, full_page=True)
                text.write_text(f"{self.page.url}\n\n{self.page.inner_text('body')}")
            except Exception as unsaved:  # the page itself may be what broke
                text.write_text(f"{self.page.url}\n\nthe page could not be saved: {unsaved}")
            raise AssertionError(
                f"in the browser, {name} failed: {error}\nscreenshot: {shot}\npage text: {text}"
            ) from error

    def open(self, path: str) -> Page:
        self.page.goto(self.url + path)
        return self.page

    def save(self, name: str, target: Page | Locator | None = None) -> Path:
        """A screenshot, once the icons and images the page asked for have arrived (the UI polls, so a
        page still busy after a few seconds is taken as it is)."""
        with suppress(PlaywrightTimeout):
            self.page.wait_for_load_state("networkidle", timeout=10_000)
        path = self.screenshots / f"{name}.png"
        (target or self.page).screenshot(path=path)
        return path


def show_asset_graph(ui: DagsterUi, groups: Sequence[str]) -> Path:
    """The global asset lineage, every group drawn as a box in the graph (not only listed beside it)."""
    with ui.step("asset-graph") as page:
        ui.open("/asset-groups")
        expect(page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
        graph = page.locator("svg")
        for group in groups:
            expect(graph.get_by_text(group, exact=True)).to_be_visible()
        expect(graph.get_by_text("fetching statuses")).to_have_count(0)
        return ui.save("asset-graph")


def materialize_from_asset_page(ui: DagsterUi, key: Sequence[str], timeout_s: float) -> str:
    """Click *Materialize* on the asset's page, follow the toast to the run, and wait until the run page
    says it succeeded; returns the run id."""
    name = "materialize-" + "-".join(key)
    with ui.step(name) as page:
        ui.open(asset_path(key))
        # The button's accessible name starts with its icon's ("materialization Materialize").
        page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
        toast = page.get_by_text("Launched run")
        expect(toast).to_be_visible()
        page.get_by_role("link", name="View", exact=True).click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        run_id = page.url.split("/runs/")[1].split("?")[0]
        # The run's status tag, once the run has ended.
        ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
        expect(ended).to_be_visible(timeout=timeout_s * 1000)
        assert ended.inner_text() == "Success", f"run {run_id}: {ended.inner_text()}"
        return run_id


def show_markdown_image(ui: DagsterUi, key: Sequence[str], label: str, alt: str, shot: str) -> Path:
    """The asset's latest materialization, its markdown metadata entry `label` opened as the UI shows it:
    the image `alt` in it must have loaded."""
    with ui.step(shot) as page:
        ui.open(asset_path(key))
        row = page.get_by_role("row").filter(has=page.get_by_text(label, exact=True))
        row.get_by_text("[Show Markdown]").click()
        dialog = page.get_by_role("dialog")
        image = dialog.get_by_role("img", name=alt, exact=True)
        expect(image).to_be_visible()
        loaded = image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded, f"the image in {label} did not load"
        return ui.save(shot, dialog)


def show_check_report(ui: DagsterUi, key: Sequence[str], check: str) -> Path:
    """The asset's Checks tab with `check` selected: its latest evaluation must read Passed."""
    with ui.step("check-report") as page:
        ui.open(f"{asset_path(key)}?view=checks&checkDetail={check}")
        expect(page.get_by_role("tab", name="Checks")).to_be_visible()
        expect(page.get_by_text(check, exact=True).first).to_be_visible()
        expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
        return ui.save("check-report")
