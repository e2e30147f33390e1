"""The /ui dashboard on a real server: login with a key in headless Chromium, the request just
made in the table, charts, drift flags end to end (server -> store -> /ui and `fondasi stats`),
and every bad input answered clearly."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from fondasi.monitor import KeyStore
from fondasi.settings import Settings

from .browser import Browser
from .serving import Running, running

SMOL = "smollm2-135m-instruct"
E5 = "multilingual-e5-small"
DRIFTING = "drift-bot"  # an alias of e5 that only the drift test sends to

COOKING = [
    "Bagaimana cara memasak {d} yang enak?",
    "Berapa lama merebus bumbu untuk {d}?",
    "Apa bahan utama {d} khas Padang?",
    "Resep {d} untuk delapan orang, tolong.",
    "Kenapa {d} saya terlalu asin?",
]
DISHES = ["nasi goreng", "rendang", "soto ayam", "gado-gado", "sate kambing", "opor ayam"]
FINANCE = [
    "What is the interest rate on a {d} this year?",
    "How do I close my {d} online?",
    "Is a fixed-rate {d} better than a variable one?",
    "What fees does the bank charge on a {d}?",
]
PRODUCTS = ["mortgage", "credit card", "savings account", "car loan", "index fund", "bond"]


@pytest.fixture(scope="module")
def server(
    shared_settings: Settings, smol: Any, e5: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("dashboard") / "logs.db"
    with running(
        shared_settings,
        {SMOL: smol, E5: e5},
        models=[SMOL, E5],
        aliases={DRIFTING: E5},
        db=str(db),
        log_text=True,
    ) as started:
        yield started


@pytest.fixture(scope="module")
def secret(server: Running) -> str:
    """An API key: from now on the server and its dashboard need one."""
    _, key = KeyStore(server.state.store).create("dashboard")
    server.state.refresh(force=True)
    return key


def ui(server: Running, path: str, key: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(server.url + path, params=params, headers=headers, timeout=120)


def non_blank_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width >= 1000 and image.height >= 600
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text, charts, badges: not blank


def test_login_then_see_the_request_just_made(
    server: Running, secret: str, shared_settings: Settings, tmp_path: Path
) -> None:
    report = shared_settings.home / "evals" / "2026-11-28-topik-berita"
    report.mkdir(parents=True, exist_ok=True)
    (report / "report.html").write_text(
        "<!doctype html><title>topik</title><h1>Topik berita</h1>", encoding="utf-8"
    )
    (report / "results.json").write_text("{}", encoding="utf-8")
    with openai.OpenAI(base_url=server.v1, api_key=secret, max_retries=0) as client:
        answer = client.chat.completions.create(
            model=SMOL,
            messages=[{"role": "user", "content": "Sebutkan ibu kota Indonesia."}],
            max_tokens=8,
        )
        client.embeddings.create(model=E5, input=["halo dunia", "selamat pagi"])
    server.flush()
    with Browser() as browser:
        login = browser.open(server.url + "/ui")
        assert browser.driver.current_url.startswith(server.url + "/ui/login?next=/ui")
        assert login.count("input[name=key][type=password]") == 1
        wrong = browser.submit({"key": "fsk-not-a-real-key"})
        assert "not valid or was revoked" in wrong.text(".message")
        assert browser.driver.get_cookie("fondasi_key") is None
        shot = tmp_path / "dashboard.png"
        page = browser.submit({"key": secret}, screenshot=shot)
        assert page.url.rstrip("/") == server.url + "/ui", page.url
        assert page.console_errors == []
        cookie = browser.driver.get_cookie("fondasi_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.count(f"tr[id='{answer.id}']") == 1
        row = page.text(f"tr[id='{answer.id}']")
        assert SMOL in row and "200" in row and "Sebutkan ibu kota" in row
        assert page.count("svg.chart") == 6
        assert page.count("select[name=window] option") == 5
        assert page.count("svg.chart circle") > 0  # the request is a point on the charts
        assert "dashboard (" in page.text(".who")  # the key's name, never the secret
        assert secret not in browser.driver.page_source
        non_blank_png(shot)
        detail = browser.open(f"{server.url}/ui/requests/{answer.id}")
        assert detail.console_errors == []
        assert "Sebutkan ibu kota Indonesia." in detail.text("pre.logged")
        assert "Guard events" in detail.text()
        for path, expected in [
            ("/ui/requests", answer.id),
            ("/ui/drift", SMOL),
            ("/ui/models", "all-minilm-l6-v2"),
            ("/ui/evals", "2026-11-28-topik-berita"),
        ]:
            other = browser.open(server.url + path)
            assert other.console_errors == [], path
            assert expected in other.text(), path
        assert browser.open(server.url + "/ui/models").text().count(DRIFTING) >= 1
        opened = browser.open(server.url + "/ui/evals/2026-11-28-topik-berita/report.html")
        assert opened.text("h1") == "Topik berita"
        browser.open(server.url + "/ui")
        out = browser.submit({}, button="form[action='/ui/logout'] button")
        assert out.url.startswith(server.url + "/ui/login")
        assert browser.driver.get_cookie("fondasi_key") is None


def test_wrong_or_missing_keys(server: Running, secret: str) -> None:
    redirect = httpx.get(server.url + "/ui/drift?model=x", timeout=60)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/ui/login?next=/ui/drift%3Fmodel%3Dx"
    refused = httpx.post(server.url + "/ui/login", data={"key": "fsk-wrong"}, timeout=60)
    assert refused.status_code == 401
    assert "That key is not valid or was revoked" in refused.text
    empty = httpx.post(server.url + "/ui/login", data={"key": ""}, timeout=60)
    assert empty.status_code == 400 and "Enter an API key" in empty.text
    with (
        openai.OpenAI(base_url=server.v1, api_key="fsk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError, match="invalid or revoked API key"),
    ):
        client.models.list()
    accepted = httpx.post(
        server.url + "/ui/login", data={"key": secret, "next": "https://evil.example/"}, timeout=60
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/ui"
    set_cookie = accepted.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    page = ui(server, "/ui", secret)
    assert page.status_code == 200
    assert "script-src 'none'" in page.headers["content-security-policy"]
    # A revoked key's cookie sends its holder back to the login form.
    keys = KeyStore(server.state.store)
    _, short_lived = keys.create("short-lived")
    keys.revoke("short-lived")
    server.state.refresh(force=True)
    gone = httpx.get(server.url + "/ui", cookies={"fondasi_key": short_lived}, timeout=60)
    assert gone.status_code == 303 and "expired=1" in gone.headers["location"]


def test_bad_filters_say_what_is_wrong(server: Running, secret: str) -> None:
    unknown = ui(server, "/ui", secret, model="smollm2-135m")
    assert unknown.status_code == 404
    assert "unknown model &#39;smollm2-135m&#39;" in unknown.text
    assert "Did you mean: smollm2-135m-instruct" in unknown.text
    for path, params, message in [
        ("/ui", {"window": "2h"}, "unknown window &#39;2h&#39;: choose one of 1h, 6h, 24h"),
        ("/ui/drift", {"recent": "soon"}, "drift recent: window &#39;soon&#39;: give a number"),
        ("/ui/drift", {"alpha": "banyak"}, "alpha &#39;banyak&#39;: give a p-value"),
        ("/ui/drift", {"alpha": "2"}, "drift alpha: Input should be less than 1"),
        ("/ui/requests", {"limit": "0"}, "give a number from 1 to 1000"),
    ]:
        answer = ui(server, path, secret, **params)
        assert answer.status_code == 400, (path, params)
        assert message in answer.text, answer.text
    missing = ui(server, "/ui/requests/chatcmpl-nope", secret)
    assert (
        missing.status_code == 404 and "no logged request &#39;chatcmpl-nope&#39;" in missing.text
    )
    for path in ["/ui/evals/../../logs.db", "/ui/evals/nope/report.html", "/ui/static/..%2Fui.py"]:
        assert ui(server, path, secret).status_code == 404, path
    assert ui(server, "/ui/static/dashboard.css").status_code == 200  # public: holds no data


def test_a_key_limited_to_some_models_sees_only_them(server: Running, secret: str) -> None:
    _, limited = KeyStore(server.state.store).create("e5-only", models=[E5])
    server.state.refresh(force=True)
    with openai.OpenAI(base_url=server.v1, api_key=secret, max_retries=0) as client:
        chat = client.chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    server.flush()
    assert chat.id in ui(server, "/ui/requests", secret).text
    seen = ui(server, "/ui/requests", limited)
    assert seen.status_code == 200 and chat.id not in seen.text and E5 in seen.text
    assert ui(server, "/ui", limited, model=SMOL).status_code == 404


def test_drift_between_two_kinds_of_traffic_is_flagged(
    server: Running, secret: str, cli: Any
) -> None:
    rng = random.Random(7)
    before = [rng.choice(COOKING).format(d=rng.choice(DISHES)) for _ in range(30)]
    after = [rng.choice(FINANCE).format(d=rng.choice(PRODUCTS)) for _ in range(60)]
    with openai.OpenAI(base_url=server.v1, api_key=secret, max_retries=0) as client:
        for text in [*before, *after]:
            client.embeddings.create(model=DRIFTING, input=text)
    server.flush()
    db = server.state.store.url.removeprefix("sqlite:///")
    window = ["--drift-recent", "60", "--drift-reference", "30"]  # finance vs cooking
    shown = cli("stats", "--db", db, "--model", DRIFTING, *window)
    assert shown.returncode == 0, shown.stderr
    assert "DRIFT" in shown.stdout and "input_embedding" in shown.stdout
    as_json = json.loads(cli("stats", "--db", db, "--json", *window).stdout)
    drifted = next(row for row in as_json if row["model"] == DRIFTING)["drift"]
    flags = {s["name"]: s["flagged"] for s in drifted["signals"]}
    assert flags == {
        "input_embedding": True,
        "output_length": False,  # embeddings generate no text: n/a
        "refusal_rate": False,
        "feedback_score": False,
    }
    assert drifted["recent"]["requests"] == 60 and drifted["reference"]["requests"] == 30
    others = [row for row in as_json if row["model"] != DRIFTING]
    assert all(row["drift"]["signals"][0]["flagged"] is False for row in others)

    page = ui(server, "/ui/drift", secret, model=DRIFTING, recent="60", reference="30")
    assert page.status_code == 200
    assert 'class="panel drift-model flagged" id="drift-drift-bot"' in page.text
    assert "drift: input_embedding" in page.text
    # Split inside the finance traffic (30 vs the 30 before), nothing is flagged.
    same = ui(server, "/ui/drift", secret, model=DRIFTING, recent="30", reference="30")
    assert same.status_code == 200
    assert "no drift flagged" in same.text and "drift: input_embedding" not in same.text
    with Browser() as browser:
        browser.open(server.url + "/ui/login")
        browser.submit({"key": secret})
        overview = browser.open(server.url + "/ui?recent=60&reference=30")
        assert overview.console_errors == []
        assert "drift: input_embedding" in overview.text("table.summary")
        assert "1 flagged" in overview.text("#drift-count")


def test_without_keys_the_dashboard_is_open_like_the_api(
    shared_settings: Settings, e5: Any, tmp_path: Path
) -> None:
    with running(shared_settings, {E5: e5}, models=[E5], db=str(tmp_path / "open.db")) as open_:
        empty = {path: httpx.get(open_.url + path, timeout=60) for path in ("/ui", "/ui/drift")}
        assert "no requests in the last 24h" in empty["/ui"].text
        assert "No logged requests yet." in empty["/ui/drift"].text
        assert all(page.status_code == 200 for page in empty.values())
        with openai.OpenAI(base_url=open_.v1, api_key="unused", max_retries=0) as client:
            made = client.embeddings.with_raw_response.create(model=E5, input="apa kabar")
        open_.flush()
        page = httpx.get(open_.url + "/ui/requests", timeout=60)
        assert page.status_code == 200
        assert made.headers["fondasi-response-id"] in page.text
        assert "open: this server has no API keys" in page.text
        login = httpx.get(open_.url + "/ui/login?next=/ui/models", timeout=60)
        assert login.status_code == 303 and login.headers["location"] == "/ui/models"
