"""`rpa inventory export|import`: masking, file modes, differences, and Vault writes counted
on `responses`."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml

from rpa.cli import main
from rpa.inventory import load_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
VAULT = "http://127.0.0.1:8200"
PASSWORD_07 = "Vault-Only-07!Kp2"
PASSWORD_40 = "Vault-Only-40!Kp2"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def write_yaml(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


# Export.

def test_export_masks_passwords(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "inventory", "export", "--inventory", str(EXAMPLES))

    exported = yaml.safe_load(out)
    examples = load_file(EXAMPLES)
    assert status == 0
    assert "Example-Only" not in out
    assert {record["password"] for record in exported["password"].values()} == {"***"}
    # Everything else is as read.
    for folder in ("password", "modeler", "mcm"):
        for name, record in examples[folder].items():
            assert {k: v for k, v in exported[folder][name].items() if k != "password"} == {
                k: v for k, v in record.items() if k != "password"}


def test_export_masks_pending_password(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    raw = load_file(EXAMPLES)
    raw["password"]["trial_user36"]["pending_password"] = "Pending-Only-36!x"
    source = write_yaml(tmp_path / "records.yaml", raw)

    _, out, _ = run(capsys, "inventory", "export", "--inventory", str(source))

    assert "Pending-Only-36!x" not in out
    assert yaml.safe_load(out)["password"]["trial_user36"]["pending_password"] == "***"


def test_export_file_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    masked = tmp_path / "masked.yaml"
    secret = tmp_path / "secret.json"

    status_masked, _, _ = run(capsys, "inventory", "export", "--inventory", str(EXAMPLES),
                              "--output", str(masked))
    status_secret, out, _ = run(capsys, "inventory", "export", "--inventory", str(EXAMPLES),
                                "--include-secrets", "--output", str(secret))

    assert status_masked == 0
    assert status_secret == 0
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(masked.stat().st_mode) == 0o644
    assert json.loads(secret.read_text(encoding="utf-8"))["password"]["trial_user01"][
        "password"] == "Example-Only-01x!Qv7"
    # The passwords go to the file only.
    assert "Example-Only" not in out


# Import against a file.

def test_masked_export_imports_as_no_change(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = write_yaml(tmp_path / "records.yaml", load_file(EXAMPLES))
    exported = tmp_path / "export.yaml"
    run(capsys, "inventory", "export", "--inventory", str(target), "--output", str(exported))
    before = target.read_bytes()

    status, out, _ = run(capsys, "inventory", "import", str(exported), "--inventory",
                         str(target))

    # 45 password, 38 modeler and 25 mcm records.
    assert status == 0
    assert "기록 108건 중 0건이 다릅니다" in out
    assert target.read_bytes() == before


def test_import_edit_keeps_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = write_yaml(tmp_path / "records.yaml", load_file(EXAMPLES))
    exported = tmp_path / "export.yaml"
    run(capsys, "inventory", "export", "--inventory", str(target), "--output", str(exported))
    raw = load_file(exported)
    raw["password"]["trial_user05"]["end_date"] = "2027-01-07"

    status, out, _ = run(capsys, "inventory", "import", str(write_yaml(exported, raw)),
                         "--inventory", str(target), "--lang", "en")

    record = load_file(target)["password"]["trial_user05"]
    assert status == 0
    assert "password/trial_user05: changed" in out
    assert "end_date: 2026-12-07 → 2027-01-07" in out
    assert record["end_date"] == "2027-01-07"
    assert record["password"] == "Example-Only-05x!Qv7"


# Import against Vault: the writes are counted.

def vault_records() -> dict[str, dict[str, Any]]:
    examples = load_file(EXAMPLES)
    return {
        "password/trial_user07": {**examples["password"]["trial_user07"],
                                  "password": PASSWORD_07},
        "password/trial_user40": {**examples["password"]["trial_user40"],
                                  "password": PASSWORD_40},
        "modeler/trial_user07": examples["modeler"]["trial_user07"],
    }


def as_file(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    raw: dict[str, Any] = {"password": {}, "modeler": {}, "mcm": {}}
    for path, record in records.items():
        folder, name = path.split("/")
        raw[folder][name] = json.loads(json.dumps(record))
    return raw


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    """Vault with two accounts; every record can be read any number of times."""
    monkeypatch.setenv("RPA_VAULT_ADDR", VAULT)
    monkeypatch.setenv("RPA_VAULT_TOKEN", "hvs.test")
    records = vault_records()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("LIST", f"{VAULT}/v1/trial/metadata/password",
                 json={"data": {"keys": ["trial_user07", "trial_user40"]}})
        mock.add("LIST", f"{VAULT}/v1/trial/metadata/modeler",
                 json={"data": {"keys": ["trial_user07"]}})
        mock.add("LIST", f"{VAULT}/v1/trial/metadata/mcm", status=404, json={"errors": []})
        for path, data in records.items():
            mock.add("GET", f"{VAULT}/v1/trial/data/{path}", json={"data": {
                "data": data, "metadata": {"version": 3, "deletion_time": "",
                                           "destroyed": False}}})
        mock.add("POST", f"{VAULT}/v1/trial/data/password/trial_user07",
                 json={"data": {"version": 4}})
        yield mock


def posts(mock: responses.RequestsMock) -> list[tuple[str, dict[str, Any]]]:
    return [(str(call.request.url), json.loads(call.request.body))
            for call in mock.calls if call.request.method == "POST"]


def test_import_writes_only_changed_record(vault: responses.RequestsMock, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = as_file(vault_records())
    for record in raw["password"].values():
        record["password"] = "***"
    raw["password"]["trial_user07"]["end_date"] = "2027-01-15"

    status, out, err = run(capsys, "inventory", "import",
                           str(write_yaml(tmp_path / "in.yaml", raw)), "--lang", "en")

    written = posts(vault)
    assert status == 0
    assert "1 of 3 records differ" in out
    assert "end_date: 2026-12-31 → 2027-01-15" in out
    assert len(written) == 1
    url, body = written[0]
    assert url.endswith("/v1/trial/data/password/trial_user07")
    assert body["options"] == {"cas": 3}
    # The masked password kept the value in Vault; the other fields are the record's.
    assert body["data"] == {**vault_records()["password/trial_user07"],
                            "end_date": "2027-01-15"}
    assert PASSWORD_07 not in out + err


def test_import_password_shown_as_changed(vault: responses.RequestsMock, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    raw = as_file(vault_records())
    raw["password"]["trial_user07"]["password"] = "New-Secret-07!z"

    status, out, err = run(capsys, "inventory", "import",
                           str(write_yaml(tmp_path / "in.yaml", raw)), "--lang", "en")

    assert status == 0
    assert "    password: changed" in out
    assert "New-Secret-07!z" not in out + err
    assert PASSWORD_07 not in out + err
    assert [body["data"]["password"] for _, body in posts(vault)] == ["New-Secret-07!z"]


def test_import_invalid_writes_nothing(vault: responses.RequestsMock, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    raw = as_file(vault_records())
    raw["password"]["trial_user07"]["end_date"] = "2027-01-15"  # valid change
    raw["modeler"]["trial_user07"]["schedule"]["start"] = "25:00"  # invalid
    raw["password"]["trial_user40"]["password"] = "***"
    raw["password"]["trial_user40"]["email"] = "no-at-sign"  # invalid

    status, out, err = run(capsys, "inventory", "import",
                           str(write_yaml(tmp_path / "in.yaml", raw)))

    assert status == 1
    assert posts(vault) == []
    assert "trial_user07  modeler.schedule.start = 25:00: invalid time '25:00'" in out
    assert "trial_user40  password.email = no-at-sign:" in out
    assert "nothing was written" in err


def test_import_masked_new_record_invalid(vault: responses.RequestsMock, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    raw = as_file(vault_records())
    raw["password"]["trial_user41"] = {"username": "trial_user41", "password": "***"}

    status, out, _ = run(capsys, "inventory", "import",
                         str(write_yaml(tmp_path / "in.yaml", raw)))

    assert status == 1
    assert posts(vault) == []
    assert "trial_user41  password.password = ***: masked, but there is no current value" in out


def test_import_dry_run_writes_nothing(vault: responses.RequestsMock, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    raw = as_file(vault_records())
    raw["password"]["trial_user07"]["end_date"] = "2027-01-15"

    status, out, _ = run(capsys, "inventory", "import",
                         str(write_yaml(tmp_path / "in.yaml", raw)), "--dry-run")

    assert status == 0
    assert "dry-run" in out
    assert "end_date: 2026-12-31 → 2027-01-15" in out
    assert posts(vault) == []


def test_import_conflict_not_overwritten(vault: responses.RequestsMock, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    changed = {**vault_records()["password/trial_user07"], "end_date": "2027-02-01"}
    url = f"{VAULT}/v1/trial/data/password/trial_user07"
    reads = iter([3, 4])

    def read(request: Any) -> tuple[int, dict[str, str], str]:
        # The first read is the import's view; by the write's read another writer moved it.
        version = next(reads, 4)
        data = vault_records()["password/trial_user07"] if version == 3 else changed
        return 200, {}, json.dumps({"data": {"data": data, "metadata": {
            "version": version, "deletion_time": "", "destroyed": False}}})

    vault.remove(responses.GET, url)
    vault.add_callback(responses.GET, url, callback=read)
    raw = as_file(vault_records())
    raw["password"]["trial_user07"]["end_date"] = "2027-01-15"

    status, _, err = run(capsys, "inventory", "import",
                         str(write_yaml(tmp_path / "in.yaml", raw)))

    assert status == 1
    assert "conflict: trial_user07: password/trial_user07 fields ['end_date'] changed" in err
    assert posts(vault) == []
