"""Tests of `read_vault`: the account records read through a `VaultClient` on `responses`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from rpa.clients.vault import VaultClient
from rpa.inventory import EmptyMountError, RecordError, read_vault
from rpa.settings import Settings

ADDR = "http://127.0.0.1:8200"
MOUNT = "trial"
PASSWORD = "Trial!Passw0rd-c3"


def list_url(folder: str) -> str:
    return f"{ADDR}/v1/{MOUNT}/metadata/{folder}"


def data_url(folder: str, name: str) -> str:
    return f"{ADDR}/v1/{MOUNT}/data/{folder}/{name}"


def live(data: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {"data": {"data": data, "metadata": {"version": version, "deletion_time": "",
                                                "destroyed": False}}}


def password_record(name: str) -> dict[str, Any]:
    return {"username": name, "password": PASSWORD, "start_date": "2026-01-05",
            "end_date": "2026-02-05"}


@pytest.fixture
def vault_http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def vault(vault_http: responses.RequestsMock) -> VaultClient:
    return VaultClient(Settings(vault_addr=ADDR, vault_auth="token", vault_token="hvs.test",
                                vault_kv_mount=MOUNT))


def list_folders(vault_http: responses.RequestsMock, **folders: list[str]) -> None:
    """Register the listing of each folder. A folder not given returns 404, as an empty one does."""
    for folder in ("password", "modeler", "mcm"):
        names = folders.get(folder)
        if names is None:
            vault_http.add("LIST", list_url(folder), status=404, json={"errors": []})
        else:
            vault_http.add("LIST", list_url(folder), json={"data": {"keys": names}})


def test_reads_every_listed_record(vault: VaultClient, vault_http: responses.RequestsMock
                                   ) -> None:
    list_folders(vault_http, password=["trial_user01", "trial_user02"],
                 modeler=["trial_user01"])
    for name in ("trial_user01", "trial_user02"):
        vault_http.add("GET", data_url("password", name), json=live(password_record(name)))
    vault_http.add("GET", data_url("modeler", "trial_user01"),
                   json=live({"site": "https://modeler-a.trial.example"}))

    raw, read_errors = read_vault(vault)

    assert read_errors == []
    assert raw == {
        "password": {"trial_user01": password_record("trial_user01"),
                     "trial_user02": password_record("trial_user02")},
        "modeler": {"trial_user01": {"site": "https://modeler-a.trial.example"}},
        "mcm": {},
    }


def test_unreadable_record_becomes_record_error(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    list_folders(vault_http, password=["trial_user01", "trial_user02"],
                 modeler=["trial_user02"])
    vault_http.add("GET", data_url("password", "trial_user01"),
                   json=live(password_record("trial_user01")))
    vault_http.add("GET", data_url("password", "trial_user02"),
                   json=live(password_record("trial_user02")))
    vault_http.add("GET", data_url("modeler", "trial_user02"), status=500,
                   json={"errors": ["internal error"]})

    raw, read_errors = read_vault(vault)

    assert [(e.account, e.field, e.value) for e in read_errors] == [
        ("trial_user02", "modeler", "")]
    assert read_errors[0].reason.startswith("cannot read record: Vault read "
                                            "trial/modeler/trial_user02 failed: internal error")
    # The password records still come through; the unreadable one is absent, not empty.
    assert sorted(raw["password"]) == ["trial_user01", "trial_user02"]
    assert raw["modeler"] == {}


def test_soft_deleted_record_becomes_a_record_error(vault: VaultClient,
                                                    vault_http: responses.RequestsMock) -> None:
    list_folders(vault_http, password=["trial_user01", "trial_user03"])
    vault_http.add("GET", data_url("password", "trial_user01"),
                   json=live(password_record("trial_user01")))
    vault_http.add("GET", data_url("password", "trial_user03"), status=404, json={"data": {
        "data": None,
        "metadata": {"version": 2, "deletion_time": "2026-02-01T00:00:00Z",
                     "destroyed": False},
    }})

    raw, read_errors = read_vault(vault)

    assert read_errors == [RecordError(
        "trial_user03", "password", "",
        "cannot read record: Vault read trial/password/trial_user03: latest version 2 is "
        "deleted")]
    assert list(raw["password"]) == ["trial_user01"]


def test_read_errors_never_show_the_password(vault: VaultClient,
                                             vault_http: responses.RequestsMock) -> None:
    list_folders(vault_http, password=["trial_user01"])
    vault_http.add("GET", data_url("password", "trial_user01"), status=400,
                   json={"errors": ["bad request"]})

    _, read_errors = read_vault(vault)

    assert len(read_errors) == 1
    assert PASSWORD not in read_errors[0].message()


@pytest.mark.parametrize(
    "password_listing",
    [
        None,  # the folder does not exist, so Vault returns 404
        [],  # the folder exists but lists no key
        ["archive/"],  # only sub-folders, which are not records
    ],
)
def test_empty_password_folder_raises_empty_mount_error(
    vault: VaultClient, vault_http: responses.RequestsMock, password_listing: list[str] | None
) -> None:
    if password_listing is None:
        list_folders(vault_http, modeler=["trial_user01"])
    else:
        list_folders(vault_http, password=password_listing, modeler=["trial_user01"])

    with pytest.raises(EmptyMountError) as caught:
        read_vault(vault)

    assert f"Vault mount {MOUNT!r} at {ADDR}" in str(caught.value)
    assert "RPA_VAULT_KV_MOUNT" in str(caught.value)
    assert not any(call.request.method == "GET" for call in vault_http.calls)


def test_records_read_concurrently_within_bound(
        vault_http: responses.RequestsMock) -> None:
    names = [f"trial_user{number:02d}" for number in range(1, 25)]
    list_folders(vault_http, password=names)
    in_flight = peak = 0
    lock = threading.Lock()

    def read(request: Any) -> tuple[int, dict[str, str], str]:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        name = request.url.rsplit("/", 1)[1]
        return 200, {}, json.dumps(live(password_record(name)))

    for name in names:
        vault_http.add_callback("GET", data_url("password", name), callback=read)
    vault = VaultClient(Settings(vault_addr=ADDR, vault_auth="token", vault_token="hvs.test",
                                 vault_kv_mount=MOUNT, concurrency=6))

    raw, read_errors = read_vault(vault)

    assert read_errors == []
    assert list(raw["password"]) == names
    assert raw["password"]["trial_user24"] == password_record("trial_user24")
    assert 1 < peak <= 6
