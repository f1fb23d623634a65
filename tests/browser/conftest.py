"""One headless Chromium for the session, driving the admin on pytest-django's live_server.

Nothing is ever downloaded: the browser and its driver are Debian's
(/usr/bin/chromium, /usr/bin/chromedriver, or the paths in WIPSIE_CHROMIUM and
WIPSIE_CHROMEDRIVER), and both paths are given to Selenium, so Selenium Manager
never runs. Without them the browser tests are skipped, except in CI (CI set),
where a missing browser is a failure: CI installs it.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

# A browser test may have a real worker and a webhook receiver beside it (test_with_a_real_worker).
from tests.e2e.conftest import peer, start_worker  # noqa: F401

# The README's screenshots (docs/) are taken again only when asked (`make screenshots`); any
# other run writes them to a temporary directory, so that running the suite leaves the checkout
# as it found it.
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = (
    DOCS
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "wipsie-screenshots"
)


def replaced(node: WebElement) -> bool:
    """Whether `node` has left the document (the page it was on was replaced).

    Selenium's `staleness_of` only knows StaleElementReferenceException; Chromium
    sometimes answers for a node of a page just replaced with a plain error,
    "Node with given id does not belong to the document": gone all the same.
    """
    try:
        node.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


CHROMIUM = Path(os.environ.get("WIPSIE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("WIPSIE_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]
WAIT_SECONDS = 15  # a deadline for a page to arrive, not a speed assertion


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium WebDriver with a fresh profile, shared by the whole session."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not _executable(path)]
    if missing:
        reason = (
            f"headless Chromium is not installed (missing {', '.join(missing)}); "
            "install the chromium and chromium-driver packages to run the browser tests"
        )
        if running_in_ci():
            pytest.fail(f"CI is set and the browser tests need a browser: {reason}", pytrace=False)
        pytest.skip(reason)

    profile = tempfile.mkdtemp(prefix="wipsie-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(WAIT_SECONDS * 2)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def link_text(element: WebElement) -> str:
    """A link's words, without the name of the icon (material symbols are text) before them."""
    lines = element.text.strip().splitlines()
    return lines[-1].strip() if lines else ""


class AdminPages:
    """What a staff member does in the admin: open pages, fill forms, press buttons, read."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url

    # --- getting around -----------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.wait_until_loaded()

    def wait_until_loaded(self) -> None:
        WebDriverWait(self.driver, WAIT_SECONDS).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def press(self, element: WebElement) -> None:
        """Click a link or a submit button, and wait for the page it leads to."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, WAIT_SECONDS).until(lambda _: replaced(page))
        self.wait_until_loaded()

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    # --- reading --------------------------------------------------------------------

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def link(self, text: str, *, within: str = "#content") -> WebElement:
        """The link reading `text`, as shown (the admin's CSS upper-cases some: matched as-is)."""
        found = [a for a in self.find_all(f"{within} a") if link_text(a).casefold() == text.casefold()]
        assert len(found) == 1, f"expected one link {text!r} in {within}, found {len(found)}"
        return found[0]

    def text(self) -> str:
        return self.find("body").text

    def messages(self) -> list[str]:
        """The admin's flash messages (unfold shows them in a list above the content)."""
        return [item.text for item in self.find_all("#main > .px-4 > div > ul > li")]

    def errors(self, field: str | None = None) -> list[str]:
        """Error messages on the page, or those shown beside one form field."""
        within = f".field-{field} " if field else ""
        return [item.text for item in self.find_all(f"{within}ul.errorlist li")]

    def search(self, term: str) -> None:
        """Type into the changelist's search box and submit it."""
        box = self.find("#searchbar")
        box.clear()
        box.send_keys(term)
        self.press(self.find("#searchbar-submit"))

    def screenshot(self, path: Path, *, width: int = 1400) -> bytes:
        """A PNG of the whole page at `width` pixels (the window grown to the page's height)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, min(max(height + 120, 900), 4000))
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        return path.read_bytes()

    def page_width_at(self, width: int, *, slack: int = 20) -> int:
        """How wide the page lays itself out in a window `width` pixels wide (scrollWidth).

        Charts resize a moment after the window does (a ResizeObserver), so the
        width is read again until it fits or the deadline passes.
        """
        self.driver.set_window_size(width, 900)

        def scroll_width(driver) -> int:
            return driver.execute_script("return document.documentElement.scrollWidth")

        # On a timeout the caller's assertion reports the width.
        with contextlib.suppress(TimeoutException):
            WebDriverWait(self.driver, WAIT_SECONDS).until(lambda d: scroll_width(d) <= width + slack)
        try:
            return scroll_width(self.driver)
        finally:
            self.driver.set_window_size(1280, 900)

    def row_of(self, pk: int) -> WebElement:
        """The changelist row whose action checkbox selects object `pk`."""
        checkbox = self.find(f'input.action-select[value="{pk}"]')
        return checkbox.find_element(By.XPATH, "./ancestor::tr")

    # --- acting ---------------------------------------------------------------------

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.press(self.find('#login-form [type="submit"]'))

    def run_action(self, description: str, *, on: list[int]) -> None:
        """Tick the rows of objects `on` in a changelist and run the action named `description`."""
        for pk in on:
            self.find(f'input.action-select[value="{pk}"]').click()
        Select(self.find('select[name="action"]')).select_by_visible_text(description)
        self.press(self.find('button[name="index"]'))


@pytest.fixture
def admin_pages(browser, live_server):
    """The shared browser, pointed at this test's live server, with no session left over."""
    browser.delete_all_cookies()
    return AdminPages(browser, live_server.url)


@pytest.fixture
def signed_in(admin_pages, staff):
    """The staff member, logged in through the login form."""
    admin_pages.log_in("admin", "admin-pass-123")
    assert admin_pages.path == "/admin/", f"login did not reach the index: {admin_pages.text()}"
    return admin_pages
