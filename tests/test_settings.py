"""Settings: a bad value names its variable, and a misspelt variable is pointed out."""

from __future__ import annotations

import pytest

from rpa.cli import main
from rpa.settings import SettingsError, load_settings, unknown_variables


@pytest.mark.parametrize(("variable", "value", "named"), [
    # not a number
    ("RPA_MAX_DELETES", "many", "RPA_MAX_DELETES"),
    # out of range
    ("RPA_CONCURRENCY", "0", "RPA_CONCURRENCY"),
    # not one of the choices
    ("RPA_LANG", "fr", "RPA_LANG"),
    # a placeholder the templates do not have
    ("RPA_BUCKET_TEMPLATE", "trial-{user}", "RPA_BUCKET_TEMPLATE"),
    # too short for a password
    ("RPA_PASSWORD_LENGTH", "8", "RPA_PASSWORD_LENGTH"),
    # letters are not special characters
    ("RPA_PASSWORD_SPECIALS", "ab", "RPA_PASSWORD_SPECIALS"),
])
def test_invalid_setting_names_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                        value: str, named: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert named in str(error.value)


def test_secret_value_not_in_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPA_VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("RPA_VAULT_AUTH", "approle")
    monkeypatch.setenv("RPA_VAULT_SECRET_ID", "s3cr3t-value")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "RPA_VAULT_ROLE_ID" in str(error.value)
    assert "s3cr3t-value" not in str(error.value)


def test_bad_setting_exits_2(monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_MAX_DELETES", "-1")
    assert main(["modeler", "--dry-run", "--sandbox"]) == 2
    assert "RPA_MAX_DELETES" in capsys.readouterr().err


def test_misspelt_variable_warned() -> None:
    warnings = unknown_variables({"RPA_MAX_DELETS": "3", "RPA_LANG": "en",
                                  "RPA_TEST_DB_URL": "x", "PATH": "/bin"})
    assert warnings == ["RPA_MAX_DELETS is not a setting and is ignored; "
                        "did you mean RPA_MAX_DELETES?"]


def test_unrelated_variable_warned_without_hint() -> None:
    assert unknown_variables({"RPA_ZZZ": "1"}) == ["RPA_ZZZ is not a setting and is ignored"]
