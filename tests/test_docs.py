"""The documentation site: it builds strictly, renders and searches offline in Chromium, its
generated reference pages are complete, the README's links resolve, and the getting-started
commands marked ``<!-- run -->`` run as written.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# Pages whose marked console blocks the snippet test runs.
SNIPPET_PAGES = ("getting-started/commands.md", "id/mulai-cepat.md")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `make docs` builds it (strict), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_strict_build_writes_every_page(site: Path) -> None:
    for page in (
        "index.html",
        "getting-started/commands.html",
        "guides/serving.html",
        "reference/cli.html",
        "reference/api.html",
        "reference/catalog.html",
        "id/mulai-cepat.html",
        "benchmarks.html",
    ):
        assert (site / page).is_file(), page
    serving = (site / "guides" / "serving.html").read_text("utf-8")
    assert 'id="workers-and-replicas"' in serving
    assert 'id="traces"' in serving
    # The generated pages come from the build, never from the repository.
    assert not (DOCS / "reference" / "cli.md").exists()
    assert not (DOCS / "reference" / "catalog.md").exists()


def test_site_loads_nothing_from_the_network(site: Path) -> None:
    """No web fonts, no CDN scripts or styles: every asset a page loads is in the site."""
    remote = re.compile(r"<(?:script|link|img)[^>]+(?:src|href)=\"(https?:)?//", re.I)
    for page in site.rglob("*.html"):
        assert not remote.search(page.read_text("utf-8")), page
    assert "fonts.googleapis" not in (site / "index.html").read_text("utf-8")


def test_cli_reference_lists_every_command(site: Path) -> None:
    import typer

    from fondasi.cli import app

    text = (site / "reference" / "cli.html").read_text("utf-8")
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="fondasi")
    names = root.list_commands(ctx)  # type: ignore[attr-defined]
    assert len(names) > 10
    for name in names:
        assert f"fondasi {name}</code>" in text, name
    assert "--runs-here" in text
    assert "fondasi serve run" in text


def test_catalog_page_lists_every_card(site: Path) -> None:
    from fondasi.api import load_catalog

    text = (site / "reference" / "catalog.html").read_text("utf-8")
    ids = load_catalog().ids()
    assert len(ids) > 50
    for model_id in ids:
        assert f"<code>{model_id}</code>" in text, model_id


def test_api_reference_documents_the_public_surface(site: Path) -> None:
    import fondasi

    text = (site / "reference" / "api.html").read_text("utf-8")
    for name in fondasi.__all__:
        if name != "__version__":
            assert f'id="fondasi.{name}"' in text, name


def test_home_and_a_guide_render_and_search_offline(site: Path, tmp_path: Path) -> None:
    """Chromium opens the built pages from file:// (no server, no network) and the search
    box finds a word that only the guard guide holds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with Browser() as browser:
        home = browser.open(site / "index.html", screenshot=tmp_path / "home.png")
        assert home.console_errors == []
        assert home.title.startswith("fondasi")
        assert "local-first workbench" in home.text("article")
        assert home.count("nav.md-nav a[href$='guides/guard.html']") >= 1

        guide = browser.open(site / "guides" / "guard.html", screenshot=tmp_path / "guard.png")
        assert guide.console_errors == []
        assert "Guard" in guide.title
        assert guide.count("article table") >= 1
        assert guide.count("article pre code") >= 3

        box = browser.driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
        box.click()
        box.send_keys("pseudonymise")
        WebDriverWait(browser.driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
        )
        results = guide.text(".md-search-result")
        assert "fondasi guard" in results
        assert guide.console_errors == []


def test_search_index_is_bundled_for_file_urls(site: Path) -> None:
    index = (site / "search" / "search_index.js").read_text("utf-8")
    assert index.startswith("var __index = ")
    assert "pseudonymise" in index
    assert "Mulai cepat" in index


def _links(markdown: str) -> Iterator[str]:
    """Link and image targets of a markdown text, outside code blocks."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    yield from re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    yield from re.findall(r"<img[^>]+src=\"([^\"]+)\"", text)


def test_readme_links_point_to_files_that_exist() -> None:
    relative = [
        link for link in _links(README.read_text("utf-8")) if not re.match(r"[a-z]+:", link)
    ]
    assert len(relative) >= 10
    for link in relative:
        path = link.split("#", 1)[0]
        if path:
            assert (ROOT / path).exists(), f"README.md links to missing {link}"


def test_readme_is_short() -> None:
    assert len(README.read_text("utf-8").splitlines()) <= 300


def _marked_commands(page: str) -> list[str]:
    """The commands of the ```console blocks that a `<!-- run -->` line marks."""
    text = (DOCS / page).read_text("utf-8")
    blocks = re.findall(r"^<!-- run -->\n```console\n(.*?)^```", text, flags=re.S | re.M)
    commands: list[str] = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line[2:] for line in joined.splitlines() if line.startswith("$ ")]
    return commands


SNIPPETS = [(page, command) for page in SNIPPET_PAGES for command in _marked_commands(page)]


def test_the_getting_started_pages_mark_commands_to_run() -> None:
    for page in SNIPPET_PAGES:
        assert len(_marked_commands(page)) >= 3, page


@pytest.mark.parametrize(("page", "command"), SNIPPETS, ids=[c for _, c in SNIPPETS])
def test_marked_doc_commands_run(page: str, command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    assert argv[0] == "fondasi", f"{page}: only fondasi commands are marked to run"
    script = Path(sys.executable).parent / "fondasi"
    env = {**os.environ, "FONDASI_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    done = subprocess.run(
        [str(script), *argv[1:]], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{page}: {command}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip()
