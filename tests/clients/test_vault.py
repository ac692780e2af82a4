"""Tests of `VaultClient` with `responses` standing in for Vault's KV v2 HTTP API."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from rpa.clients import errors
from rpa.clients.vault import CAS_ATTEMPTS, DeletedVersion, Secret, VaultClient
from rpa.settings import Settings

ADDR = "http://127.0.0.1:8200"
MOUNT = "trial"
DATA_URL = f"{ADDR}/v1/{MOUNT}/data/password/trial_user07"
LIST_URL = f"{ADDR}/v1/{MOUNT}/metadata/password"
APPROLE_LOGIN_URL = f"{ADDR}/v1/auth/approle/login"

# Secret values: none of them may show up in an exception message or a log record.
VAULT_TOKEN = "hvs.static-token-1f4e"
SECRET_ID = "approle-secret-id-77aa"
LOGIN_TOKENS = ("hvs.approle-login-one", "hvs.approle-login-two")
JWT = "eyJhbGciOi.k8s-service-account.c2lnbmF0dXJl"
PASSWORD = "Trial!Passw0rd-c3"
NEW_PASSWORD = "N3w-Passw0rd!9b"
SECRETS = (VAULT_TOKEN, SECRET_ID, *LOGIN_TOKENS, JWT, PASSWORD, NEW_PASSWORD)

CAS_MISMATCH = {"errors": ["check-and-set parameter did not match the current version"]}


def token_settings(**overrides: Any) -> Settings:
    return Settings(vault_addr=ADDR, vault_auth="token", vault_token=VAULT_TOKEN, **overrides)


def approle_settings() -> Settings:
    return Settings(vault_addr=ADDR, vault_auth="approle", vault_role_id="rpa-role",
                    vault_secret_id=SECRET_ID)


def record(version: int, **fields: Any) -> dict[str, Any]:
    """Build the body of a KV v2 read of one live version."""
    data = {"username": "trial_user07", "password": PASSWORD, **fields}
    metadata = {"created_time": "2026-01-05T01:02:03.456Z", "deletion_time": "",
                "destroyed": False, "version": version}
    return {"data": {"data": data, "metadata": metadata}}


def written(version: int) -> dict[str, Any]:
    """Build the body of a successful KV v2 write."""
    return {"data": {"created_time": "2026-01-05T01:02:03.456Z", "deletion_time": "",
                     "destroyed": False, "version": version}}


def login_reply(token: str) -> dict[str, Any]:
    return {"auth": {"client_token": token, "lease_duration": 3600, "renewable": True}}


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


@pytest.fixture
def vault_http() -> Iterator[responses.RequestsMock]:
    """Intercept every request; each registered reply must have been used by the end."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def vault(vault_http: responses.RequestsMock) -> VaultClient:
    return VaultClient(token_settings())


# Listing.


def test_list_names_skips_folders_and_sorts(vault: VaultClient,
                                            vault_http: responses.RequestsMock) -> None:
    vault_http.add("LIST", LIST_URL,
                   json={"data": {"keys": ["trial_user09", "archive/", "trial_user01"]}})

    assert vault.list_names("password") == ["trial_user01", "trial_user09"]
    assert vault_http.calls[0].request.headers["X-Vault-Token"] == VAULT_TOKEN


def test_list_names_of_absent_folder_is_empty(vault: VaultClient,
                                              vault_http: responses.RequestsMock) -> None:
    vault_http.add("LIST", LIST_URL, status=404, json={"errors": []})

    assert vault.list_names("password") == []


# Reading.


def test_read_returns_data_and_version(vault: VaultClient, vault_http: responses.RequestsMock
                                       ) -> None:
    vault_http.add("GET", DATA_URL, json=record(3, note="학습용 계정 🙂"))

    secret = vault.read("password/trial_user07")

    assert secret == Secret("password/trial_user07",
                            {"username": "trial_user07", "password": PASSWORD,
                             "note": "학습용 계정 🙂"}, 3)


def test_read_soft_deleted_raises_deleted_version(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    # KV v2 returns 404 with null data and the deletion time in the metadata.
    vault_http.add("GET", DATA_URL, status=404, json={"data": {
        "data": None,
        "metadata": {"created_time": "2026-01-05T01:02:03Z",
                     "deletion_time": "2026-02-01T00:00:00Z", "destroyed": False,
                     "version": 4},
    }})

    with pytest.raises(DeletedVersion) as caught:
        vault.read("password/trial_user07")

    assert str(caught.value) == ("Vault read trial/password/trial_user07: latest version 4 is "
                                 "deleted")


def test_read_of_absent_secret_raises_not_found(vault: VaultClient,
                                                vault_http: responses.RequestsMock) -> None:
    vault_http.add("GET", DATA_URL, status=404, json={"errors": []})

    with pytest.raises(errors.NotFound) as caught:
        vault.read("password/trial_user07")

    assert caught.value.status == 404


def test_read_of_unexpected_shape_raises_invalid_response(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    vault_http.add("GET", DATA_URL, json={"data": {"data": ["not", "a", "mapping"],
                                                   "metadata": {"version": 1}}})

    with pytest.raises(errors.InvalidResponse, match="unexpected shape"):
        vault.read("password/trial_user07")


# Writing with check-and-set.


def test_write_sends_cas_and_returns_new_version(vault: VaultClient,
                                                 vault_http: responses.RequestsMock) -> None:
    vault_http.add("POST", DATA_URL, json=written(4))
    data = {"username": "trial_user07", "password": NEW_PASSWORD}

    version = vault.write("password/trial_user07", data, cas=3)

    assert version == 4
    assert sent_json(vault_http.calls[0]) == {"options": {"cas": 3}, "data": data}


def test_write_cas_mismatch_raises_conflict(vault: VaultClient,
                                            vault_http: responses.RequestsMock) -> None:
    vault_http.add("POST", DATA_URL, status=400, json=CAS_MISMATCH)

    with pytest.raises(errors.Conflict) as caught:
        vault.write("password/trial_user07", {"password": NEW_PASSWORD}, cas=3)

    assert caught.value.status == 400
    assert str(caught.value) == ("Vault write trial/password/trial_user07: version 3 is no "
                                 "longer the latest")


def test_write_rejected_for_another_reason_stays_invalid_request(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    vault_http.add("POST", DATA_URL, status=400, json={"errors": ["no data provided"]})

    with pytest.raises(errors.InvalidRequest) as caught:
        vault.write("password/trial_user07", {}, cas=0)

    assert type(caught.value) is errors.InvalidRequest
    assert "no data provided" in str(caught.value)


def test_update_retries_and_keeps_concurrent_edit(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    # Between our read and our write another writer changes the note and bumps the version.
    vault_http.add("GET", DATA_URL, json=record(3, note="old"))
    vault_http.add("GET", DATA_URL, json=record(4, note="changed by the other writer"))
    vault_http.add("POST", DATA_URL, status=400, json=CAS_MISMATCH)
    vault_http.add("POST", DATA_URL, json=written(5))

    secret = vault.update("password/trial_user07",
                          lambda fields: {**fields, "password": NEW_PASSWORD})

    writes = [sent_json(call) for call in vault_http.calls if call.request.method == "POST"]
    assert [w["options"]["cas"] for w in writes] == [3, 4]
    expected = {"username": "trial_user07", "password": NEW_PASSWORD,
                "note": "changed by the other writer"}
    assert writes[1]["data"] == expected
    assert secret == Secret("password/trial_user07", expected, 5)


def test_update_without_change_writes_nothing(vault: VaultClient,
                                              vault_http: responses.RequestsMock) -> None:
    vault_http.add("GET", DATA_URL, json=record(3))

    secret = vault.update("password/trial_user07", lambda fields: fields)

    assert secret.version == 3
    assert [call.request.method for call in vault_http.calls] == ["GET"]


def test_update_gives_up_after_repeated_conflicts(vault: VaultClient,
                                                  vault_http: responses.RequestsMock) -> None:
    vault_http.add("GET", DATA_URL, json=record(3))
    vault_http.add("POST", DATA_URL, status=400, json=CAS_MISMATCH)

    with pytest.raises(errors.Conflict, match=f"lost {CAS_ATTEMPTS} check-and-set races"):
        vault.update("password/trial_user07", lambda fields: {**fields, "note": "x"})

    assert sum(call.request.method == "POST" for call in vault_http.calls) == CAS_ATTEMPTS


# Login and failures.


def test_approle_logs_in_again_once_after_403(vault_http: responses.RequestsMock) -> None:
    for token in LOGIN_TOKENS:
        vault_http.add("POST", APPROLE_LOGIN_URL, json=login_reply(token), match=[
            matchers.json_params_matcher({"role_id": "rpa-role", "secret_id": SECRET_ID})])
    vault_http.add("GET", DATA_URL, status=403, json={"errors": ["permission denied"]})
    vault_http.add("GET", DATA_URL, json=record(2))
    vault = VaultClient(approle_settings())

    secret = vault.read("password/trial_user07")

    assert secret.version == 2
    reads = [call.request for call in vault_http.calls if call.request.method == "GET"]
    assert [r.headers["X-Vault-Token"] for r in reads] == list(LOGIN_TOKENS)


def test_approle_403_twice_raises_forbidden(vault_http: responses.RequestsMock) -> None:
    vault_http.add("POST", APPROLE_LOGIN_URL, json=login_reply(LOGIN_TOKENS[0]))
    vault_http.add("GET", DATA_URL, status=403, json={"errors": ["permission denied"]})
    vault = VaultClient(approle_settings())

    with pytest.raises(errors.Forbidden) as caught:
        vault.read("password/trial_user07")

    assert caught.value.status == 403
    assert "permission denied" in str(caught.value)
    methods = [call.request.method for call in vault_http.calls]
    assert methods == ["POST", "GET", "POST", "GET"]


def test_token_auth_403_raises_forbidden_without_retry(vault: VaultClient,
                                                       vault_http: responses.RequestsMock
                                                       ) -> None:
    vault_http.add("GET", DATA_URL, status=403, json={"errors": ["permission denied"]})

    with pytest.raises(errors.Forbidden):
        vault.read("password/trial_user07")

    assert len(vault_http.calls) == 1


def test_approle_login_rejected_raises_with_address(vault_http: responses.RequestsMock) -> None:
    vault_http.add("POST", APPROLE_LOGIN_URL, status=400,
                   json={"errors": ["invalid role or secret ID"]})

    with pytest.raises(errors.InvalidRequest) as caught:
        VaultClient(approle_settings())

    assert str(caught.value).startswith(f"Vault login with approle auth at {ADDR} failed: "
                                        "invalid role or secret ID")


def test_sealed_vault_raises_unavailable(vault: VaultClient, vault_http: responses.RequestsMock
                                         ) -> None:
    vault_http.add("GET", DATA_URL, status=503, json={"errors": ["Vault is sealed"]})

    with pytest.raises(errors.Unavailable) as caught:
        vault.read("password/trial_user07")

    assert caught.value.status == 503
    assert str(caught.value) == "Vault read trial/password/trial_user07 failed: sealed"


def test_connection_error_raises_unavailable_naming_address(
    vault: VaultClient, vault_http: responses.RequestsMock
) -> None:
    vault_http.add("LIST", LIST_URL, body=requests.ConnectionError("connection refused"))

    with pytest.raises(errors.Unavailable) as caught:
        vault.list_names("password")

    assert str(caught.value) == (f"Vault list trial/password/: cannot reach Vault at {ADDR} "
                                 "(ConnectionError)")


def test_connection_error_at_login_names_address_once(vault_http: responses.RequestsMock
                                                      ) -> None:
    vault_http.add("POST", APPROLE_LOGIN_URL, body=requests.ConnectTimeout("timed out"))

    with pytest.raises(errors.Unavailable) as caught:
        VaultClient(approle_settings())

    assert str(caught.value) == (f"Vault login with approle auth at {ADDR}: cannot reach Vault "
                                 "(ConnectTimeout)")


@pytest.mark.parametrize("mount", ["kubernetes", "eks-prod"])
def test_kubernetes_auth_posts_token_file_to_login(vault_http: responses.RequestsMock,
                                                   tmp_path: Path, mount: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(JWT + "\n", encoding="utf-8")
    vault_http.add("POST", f"{ADDR}/v1/auth/{mount}/login", json=login_reply(LOGIN_TOKENS[0]),
                   match=[matchers.json_params_matcher({"role": "rpa", "jwt": JWT})])
    vault_http.add("GET", DATA_URL, json=record(1))

    vault = VaultClient(Settings(vault_addr=ADDR, vault_auth="kubernetes", vault_k8s_role="rpa",
                                 vault_k8s_mount=mount, vault_k8s_token_path=token_file))

    assert vault.read("password/trial_user07").version == 1
    assert vault_http.calls[1].request.headers["X-Vault-Token"] == LOGIN_TOKENS[0]


def test_kubernetes_auth_without_token_file_raises_unauthorized(
    vault_http: responses.RequestsMock, tmp_path: Path
) -> None:
    missing = tmp_path / "serviceaccount" / "token"

    with pytest.raises(errors.Unauthorized) as caught:
        VaultClient(Settings(vault_addr=ADDR, vault_auth="kubernetes", vault_k8s_role="rpa",
                             vault_k8s_token_path=missing))

    assert str(missing) in str(caught.value)
    assert len(vault_http.calls) == 0


def test_verify_false_logs_a_warning(vault_http: responses.RequestsMock,
                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rpa.clients.vault"):
        VaultClient(token_settings(vault_verify=False))

    assert [r.getMessage() for r in caplog.records] == [f"TLS verification is off for Vault "
                                                        f"at {ADDR}"]


def test_no_secret_value_reaches_messages_or_logs(vault_http: responses.RequestsMock,
                                                  tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    def expect_failure(action: Any) -> None:
        with pytest.raises(errors.ClientError) as caught:
            action()
        messages.append(str(caught.value))
        if caught.value.__cause__ is not None:
            messages.append(str(caught.value.__cause__))

    # An approle client that logs in, is refused twice, then loses a check-and-set race.
    vault_http.add("POST", APPROLE_LOGIN_URL, json=login_reply(LOGIN_TOKENS[0]))
    vault_http.add("POST", APPROLE_LOGIN_URL, json=login_reply(LOGIN_TOKENS[1]))
    vault_http.add("GET", DATA_URL, status=403, json={"errors": ["permission denied"]})
    approle = VaultClient(approle_settings())
    expect_failure(lambda: approle.read("password/trial_user07"))
    vault_http.add("POST", DATA_URL, status=400, json=CAS_MISMATCH)
    expect_failure(lambda: approle.write("password/trial_user07",
                                         {"password": NEW_PASSWORD}, cas=1))

    # A token client whose write succeeds, then fails on a sealed Vault and a lost connection.
    static = VaultClient(token_settings())
    vault_http.replace("POST", DATA_URL, json=written(2))
    static.write("password/trial_user07", {"password": NEW_PASSWORD, "old": PASSWORD}, cas=1)
    vault_http.replace("POST", DATA_URL, status=503, json={"errors": ["Vault is sealed"]})
    expect_failure(lambda: static.write("password/trial_user07",
                                        {"password": NEW_PASSWORD}, cas=2))
    vault_http.replace("POST", DATA_URL, body=requests.ConnectionError("reset"))
    expect_failure(lambda: static.write("password/trial_user07",
                                        {"password": NEW_PASSWORD}, cas=2))

    # A kubernetes login that Vault rejects.
    token_file = tmp_path / "token"
    token_file.write_text(JWT, encoding="utf-8")
    vault_http.add("POST", f"{ADDR}/v1/auth/kubernetes/login", status=403,
                   json={"errors": ["permission denied"]})
    expect_failure(lambda: VaultClient(Settings(
        vault_addr=ADDR, vault_auth="kubernetes", vault_k8s_role="rpa",
        vault_k8s_token_path=token_file)))

    assert len(messages) == 10
    logged = [record.getMessage() for record in caplog.records]
    assert any("wrote Vault trial/password/trial_user07" in line for line in logged)
    for text in messages + logged:
        for secret in SECRETS:
            assert secret not in text


def test_expired_token_one_login_for_all_threads(
        vault_http: responses.RequestsMock) -> None:
    """Eight reads rejected at the same time lead to one login, then all eight succeed."""
    logins: list[str] = []
    rejected = threading.Barrier(8, timeout=10)

    def login(request: Any) -> tuple[int, dict[str, str], str]:
        token = LOGIN_TOKENS[len(logins)]
        logins.append(token)
        return 200, {}, json.dumps(login_reply(token))

    def read(request: Any) -> tuple[int, dict[str, str], str]:
        if request.headers["X-Vault-Token"] == LOGIN_TOKENS[0]:
            rejected.wait()  # every thread is rejected before any logs in again
            return 403, {}, json.dumps({"errors": ["permission denied"]})
        return 200, {}, json.dumps(record(3))

    vault_http.add_callback("POST", APPROLE_LOGIN_URL, callback=login)
    vault_http.add_callback("GET", DATA_URL, callback=read)
    vault = VaultClient(approle_settings())

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = list(pool.map(lambda _: vault.read("password/trial_user07"), range(8)))

    assert [secret.version for secret in secrets] == [3] * 8
    assert logins == list(LOGIN_TOKENS)
