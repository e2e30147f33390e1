"""Open a page in headless Chromium (Selenium + Debian's chromium-driver) and look at it.

Shared by the tests of HTML reports and the server dashboard::

    with Browser() as browser:
        page = browser.open(path_or_url, screenshot=tmp_path / "page.png")
        assert page.console_errors == []
        assert page.count("svg.chart") >= 1

``make test`` installs ``chromium`` and ``chromium-driver`` (apt) first.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths: tuple[str, ...], name: str) -> str:
    for path in paths:
        if Path(path).is_file():
            return path
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run `make test` (it apt-installs it)")
    return found


@dataclass
class Page:
    """What the browser saw on one page."""

    url: str
    title: str
    console_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    driver: Any = None

    def count(self, css: str) -> int:
        """How many elements match a CSS selector."""
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str = "body") -> str:
        """The visible text of the first element matching ``css``."""
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def size(self, css: str) -> tuple[int, int]:
        """Rendered width and height of the first element matching ``css``."""
        from selenium.webdriver.common.by import By

        rect = self.driver.find_element(By.CSS_SELECTOR, css).rect
        return int(rect["width"]), int(rect["height"])

    def script(self, code: str) -> Any:
        """Run JavaScript in the page and return its value."""
        return self.driver.execute_script(code)


class Browser:
    """Headless Chromium for the length of a ``with`` block."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.width = width
        self.height = height
        self.driver: Any = None

    def __enter__(self) -> Browser:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = _first(CHROMIUM, "chromium")
        for flag in (
            "--headless=new",
            "--no-sandbox",  # tests run as root in containers
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--window-size={self.width},{self.height}",
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=_first(DRIVER, "chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(60)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.driver is not None:
            self.driver.quit()
            self.driver = None

    def open(self, target: str | Path, screenshot: Path | None = None) -> Page:
        """Load a file path or URL; collect console errors; optionally save a full-page PNG."""
        url = Path(target).resolve().as_uri() if isinstance(target, Path) else str(target)
        if "://" not in url:
            url = Path(url).resolve().as_uri()
        self.driver.get(url)
        logs = self.driver.get_log("browser")
        errors = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
        page = Page(url, str(self.driver.title), errors, driver=self.driver)
        if screenshot is not None:
            height = int(self.driver.execute_script("return document.body.scrollHeight"))
            self.driver.set_window_size(self.width, min(max(height + 40, 400), 8000))
            self.driver.save_screenshot(str(screenshot))
            self.driver.set_window_size(self.width, self.height)
            page.screenshot = screenshot
        return page

    def submit(
        self,
        fields: dict[str, str],
        button: str = "form button[type=submit]",
        screenshot: Path | None = None,
    ) -> Page:
        """Type into the open page's inputs (by name), press ``button``, and return the page
        the form leads to, with that page's console errors."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        for name, value in fields.items():
            element = self.driver.find_element(By.NAME, name)
            element.clear()
            element.send_keys(value)
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, button).click()
        wait = WebDriverWait(self.driver, 60)
        wait.until(lambda _: _detached(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        logs = self.driver.get_log("browser")
        errors = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
        page = Page(self.driver.current_url, str(self.driver.title), errors, driver=self.driver)
        if screenshot is not None:
            height = int(self.driver.execute_script("return document.body.scrollHeight"))
            self.driver.set_window_size(self.width, min(max(height + 40, 400), 8000))
            self.driver.save_screenshot(str(screenshot))
            self.driver.set_window_size(self.width, self.height)
            page.screenshot = screenshot
        return page


def _detached(element: Any) -> bool:
    """Whether ``element`` has left the document, i.e. the next page has replaced it.

    Chromium answers a question about a node of the page being torn down either with a stale
    reference (what selenium's ``staleness_of`` expects) or, in a narrow window mid-navigation,
    with "Node with given id does not belong to the document": both mean the old page is gone.
    """
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException is one of these
        return True
    return False
