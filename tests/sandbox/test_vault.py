"""Tests of the Vault stand-in through `VaultClient`, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rpa.clients import errors
from rpa.clients.vault import VaultClient
from rpa.inventory import RawRecords, read_vault
from rpa.sandbox.vault import VaultStandIn
from rpa.settings import Settings

TOKEN = "hvs.stand-in-token-4c1d"
RECORDS: RawRecords = {
    "password": {
        "trial_user01": {"username": "trial_user01", "password": "Pw-01!aa",
                         "start_date": "2026-12-01", "end_date": "2027-01-31"},
        "trial_user02": {"username": "trial_user02", "password": "Pw-02!bb",
                         "start_date": "2026-12-01", "end_date": "2027-01-31"},
    },
    "modeler": {"trial_user02": {"site": "https://modeler-a.trial.example"}},
    "mcm": {},
}


@pytest.fixture
def address() -> Iterator[tuple[VaultStandIn, str]]:
    stand_in = VaultStandIn(RECORDS, token=TOKEN)
    url = stand_in.start()
    yield stand_in, url
    stand_in.stop()


def client(url: str, token: str = TOKEN) -> VaultClient:
    return VaultClient(Settings(vault_addr=url, vault_auth="token", vault_token=token,
                                vault_kv_mount="trial"))


def test_records_read_back_one_call_each(
        address: tuple[VaultStandIn, str]) -> None:
    stand_in, url = address

    raw, read_errors = read_vault(client(url))

    assert read_errors == []
    assert raw == RECORDS
    assert stand_in.calls == {"list": 3, "read": 3}


def test_wrong_token_rejected(address: tuple[VaultStandIn, str]) -> None:
    stand_in, url = address

    with pytest.raises(errors.Forbidden, match="permission denied"):
        client(url, token="hvs.wrong").read("password/trial_user01")
    assert stand_in.calls == {"rejected": 1}


def test_absent_record_and_write_rejected(
        address: tuple[VaultStandIn, str]) -> None:
    _, url = address
    vault = client(url)

    with pytest.raises(errors.NotFound):
        vault.read("password/trial_user99")
    with pytest.raises(errors.Forbidden, match="permission denied"):
        vault.write("password/trial_user01", {"password": "x"}, cas=1)
