"""API keys: the CLI prints a key once, the server requires keys once one exists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from fondasi.monitor import KeyStore, Store
from fondasi.settings import Settings

from .conftest import Cli
from .serving import Running, running

E5 = "multilingual-e5-small"
SMOL = "smollm2-135m-instruct"


def test_cli_creates_a_key_shown_once_on_its_last_line(cli: Cli, home: Path) -> None:
    created = cli("keys", "create", "tim-cs", "--rate", "30", "--models", E5)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("fsk-") and " " not in secret
    listed = cli("keys", "list")
    assert "tim-cs" in listed.stdout and "30/min" in listed.stdout
    assert secret not in listed.stdout
    as_json = cli("keys", "list", "--json")
    assert secret not in as_json.stdout and '"hash"' not in as_json.stdout
    assert secret.encode() not in (home / "fondasi.db").read_bytes()
    again = cli("keys", "create", "tim-cs")
    assert again.returncode == 2 and "error: a key named 'tim-cs' exists" in again.stderr
    wrong = cli("keys", "revoke", "tim-sc")
    assert wrong.returncode == 2 and "Did you mean: tim-cs" in wrong.stderr
    assert cli("keys", "revoke", "tim-cs").returncode == 0
    assert "revoked" in cli("keys", "list").stdout
    bad_rate = cli("keys", "create", "x", "--rate", "0")
    assert bad_rate.returncode == 2 and "at least 1" in bad_rate.stderr


@pytest.fixture
def locked(shared_settings: Settings, e5: Any, smol: Any, tmp_path: Path) -> Iterator[Running]:
    with running(
        shared_settings, {E5: e5, SMOL: smol}, models=[E5, SMOL], db=str(tmp_path / "k.db")
    ) as started:
        yield started


def _keys(server: Running) -> KeyStore:
    return KeyStore(server.state.store)


def test_no_keys_means_open_one_key_means_locked(locked: Running) -> None:
    body = {"model": E5, "input": "halo"}
    assert httpx.post(locked.v1 + "/embeddings", json=body, timeout=30).status_code == 200
    info, secret = _keys(locked).create("app")
    locked.state.refresh(force=True)
    missing = httpx.post(locked.v1 + "/embeddings", json=body, timeout=30)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    with (
        openai.OpenAI(base_url=locked.v1, api_key="fsk-wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.embeddings.create(model=E5, input="halo")
    with openai.OpenAI(base_url=locked.v1, api_key=secret, max_retries=0) as sdk:
        assert sdk.embeddings.create(model=E5, input="halo").data
        assert [m.id for m in sdk.models.list()] == [E5, SMOL]
        _keys(locked).revoke("app")
        deadline = time.monotonic() + 10  # the server re-reads keys every second
        refusal = ""
        while time.monotonic() < deadline and not refusal:
            try:
                sdk.embeddings.create(model=E5, input="halo")
            except openai.AuthenticationError as exc:
                refusal = str(exc)
            time.sleep(0.2)
        assert "revoked" in refusal
    locked.flush()
    rows = locked.state.store.requests(limit=100)
    assert {r.key_id for r in rows if r.status == 200} == {None, info.id}
    assert sum(r.status == 401 for r in rows) >= 3


def test_rate_limit_and_allow_list(locked: Running) -> None:
    _, limited = _keys(locked).create("kecil", rate_per_minute=3, models=[E5])
    locked.state.refresh(force=True)
    with openai.OpenAI(base_url=locked.v1, api_key=limited, max_retries=0) as sdk:
        assert [m.id for m in sdk.models.list()] == [E5]  # only what the key may use
        sdk.embeddings.create(model=E5, input="satu")
        with pytest.raises(openai.PermissionDeniedError, match="may use: multilingual-e5-small"):
            sdk.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as limited_error:
            sdk.embeddings.create(model=E5, input="tiga")
    assert int(limited_error.value.response.headers["retry-after"]) >= 1


def test_admin_routes_need_an_admin_key(locked: Running) -> None:
    _, plain = _keys(locked).create("biasa")
    _, admin = _keys(locked).create("ops", admin=True)
    locked.state.refresh(force=True)
    body = {"model": E5}
    refused = httpx.put(
        locked.url + "/admin/aliases/cari",
        json=body,
        headers={"Authorization": f"Bearer {plain}"},
        timeout=30,
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
    done = httpx.put(
        locked.url + "/admin/aliases/cari",
        json=body,
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert done.status_code == 200 and done.json()["describe"] == f"cari -> {E5}"
    assert httpx.get(locked.url + "/metrics", timeout=30).status_code == 401


def test_key_store_is_shared_with_the_cli(locked: Running, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "k.db"))
    _, secret = KeyStore(store).create("dari-cli")
    store.close()
    locked.state.refresh(force=True)
    assert locked.state.key(secret) is not None


def test_refused_requests_are_logged_with_the_model_they_asked_for(locked: Running) -> None:
    _keys(locked).create("siapa")
    locked.state.refresh(force=True)
    refused = httpx.post(locked.v1 + "/embeddings", json={"model": E5, "input": "x"}, timeout=30)
    assert refused.status_code == 401
    locked.flush()
    (row,) = locked.state.store.requests(limit=1)
    assert (row.status, row.model, row.key_id) == (401, E5, None)
