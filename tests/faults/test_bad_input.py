"""Bad records, generated with hypothesis: wrong types, missing fields, numbers out of range,
odd Unicode, very long strings and malformed dates and times in one account's records.

The job never prints a traceback, every error names the account and the field, the valid
accounts are still reconciled, and the exit status is 1.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from faultkit import EXAMPLES, example_records, modeler_site
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rpa.cli import main
from rpa.inventory import (
    ACCOUNT_NAME,
    ERROR_VALUE_MAX_CHARS,
    HIDDEN_CATEGORIES,
    printable,
    validate_records,
)
from rpa.sandbox.runtime import STATE_FILE, Servers, site_key, start_servers

VALID = ["trial_user01", "trial_user02"]
# The account whose records the tests break; its records are valid before.
TARGET = "trial_user03"
CORE = "2026-12-04T10:00+09:00"

# Characters that break naive text handling: right-to-left marks and overrides, zero-width
# and byte-order marks, NUL and other controls, combining accents, emoji with joiners,
# Hangul, and a lone surrogate (valid in JSON as an escape, not encodable as UTF-8).
ODD_CHARACTERS = ["\u200f", "\u202e", "\u2066", "\u200b", "\ufeff", "\x00", "\x1b", "\n",
                  "e\u0301", "\u0300", "👩‍💻", "🙂", "한글", "\ud800", "\U0010ffff", "'", "\"",
                  "\\", "{", "%s"]
odd_text = st.lists(st.sampled_from(ODD_CHARACTERS) | st.text(max_size=3), min_size=1,
                    max_size=12).map("".join)
long_text = st.integers(min_value=1001, max_value=20_000).map(lambda n: "가" * n)
not_text = st.one_of(st.integers(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                     st.floats(allow_nan=True))
not_a_date = st.one_of(
    st.sampled_from(["2026-02-30", "2026-13-01", "26-12-01", "2026/12/01", "2026-12-01T10:30",
                     "yesterday", "", "2026-12-01T00:00:00+25:00", "0000-00-00"]),
    odd_text.map(lambda text: "x" + text), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
not_an_instant = st.one_of(
    st.sampled_from(["2026-12-01T10:00:00", "2026-12-01T25:00:00+09:00", "2026-12-01",
                     "2026-12-01T10:00+99:00", "now"]),
    odd_text.map(lambda text: "x" + text))
not_a_clock = st.one_of(st.sampled_from(["25:00", "9:00", "09:60", "24:01", "ab:cd", "", "0900"]),
                        odd_text.map(lambda text: "x" + text), not_text)
# Free text that can never be a valid value of a keyword field (a day, zone, purpose, market,
# release label or URL), because none of those starts with "x!".
not_a_keyword = odd_text.map(lambda text: "x!" + text)
not_a_count = st.one_of(st.integers(max_value=0), st.integers(min_value=257),
                        st.sampled_from(["four", "4.5", "", "1e3"]), st.just(4.5),
                        st.lists(st.integers(), max_size=2), st.none())


@dataclass(frozen=True)
class Breakage:
    """One change to TARGET's records: a value at a path, or a field removed (`value` None
    with `remove`), and the field that the error must name."""

    folder: str
    path: tuple[str | int, ...]
    value: Any
    remove: bool = False

    def field(self) -> str:
        text = self.folder
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


def breakage(folder: str, *path: str | int, values: st.SearchStrategy[Any]
             ) -> st.SearchStrategy[Breakage]:
    return values.map(lambda value: Breakage(folder, path, value))


BREAKAGES = st.one_of(
    breakage("password", "username", values=st.one_of(st.just(""), long_text, not_text)),
    breakage("password", "password", values=st.one_of(not_text, st.none())),
    breakage("password", "email", values=odd_text.filter(lambda text: "@" not in text)),
    breakage("password", "start_date", values=not_a_date),
    breakage("password", "end_date", values=not_a_date),
    breakage("password", "released_at", values=not_an_instant),
    breakage("password", "purpose", values=not_a_keyword),
    breakage("password", "note", values=long_text),
    st.sampled_from(["username", "password"]).map(
        lambda name: Breakage("password", (name,), None, remove=True)),
    odd_text.map(lambda name: Breakage("password", ("x-" + name,), "unexpected")),
    breakage("modeler", "site", values=st.one_of(not_a_keyword, not_text)),
    breakage("modeler", "schedule", "start", values=not_a_clock),
    breakage("modeler", "schedule", "days", values=st.one_of(not_a_keyword, st.just([]))),
    breakage("modeler", "schedule", "timezone", values=not_a_keyword),
    breakage("modeler", "projects", 0, "cpu", values=not_a_count),
    breakage("modeler", "projects", 0, "name", values=st.one_of(not_a_keyword, long_text)),
    breakage("modeler", "autoscaling_group", "core_desired",
             values=st.one_of(st.integers(min_value=5), st.integers(max_value=-1))),
    breakage("mcm", "clusters", 0, "core_count", values=not_a_count),
    breakage("mcm", "clusters", 0, "release_label", values=not_a_keyword),
    breakage("mcm", "clusters", 0, "market", values=not_a_keyword),
    breakage("mcm", "schedule", "end", values=not_a_clock),
    st.sampled_from(["password", "modeler", "mcm"]).flatmap(
        lambda folder: not_text.filter(lambda v: not isinstance(v, dict)).map(
            lambda value: Breakage(folder, (), value))),
)


def broken_records(item: Breakage) -> dict[str, dict[str, Any]]:
    """The records of VALID and TARGET, with TARGET's broken as `item` describes."""
    raw = copy.deepcopy(example_records([*VALID, TARGET]))
    if not item.path:
        raw[item.folder][TARGET] = item.value
        return raw
    parent: Any = raw[item.folder][TARGET]
    for part in item.path[:-1]:
        parent = parent[part]
    if item.remove:
        del parent[item.path[-1]]
    else:
        parent[item.path[-1]] = item.value
    return raw


def assert_errors_name_field(errors: list[tuple[str, str, str]], item: Breakage) -> None:
    """Every error is about TARGET and at the broken field or one that contains it. One of
    them names the broken field: as its field, or in the message of a check that spans
    several fields (a group's desired size between its min and max, say)."""
    expected = printable(item.field())
    leaf = printable(str(item.path[-1])) if item.path else item.folder
    assert errors
    for account, field, _ in errors:
        assert account == TARGET
        assert field.startswith(expected) or expected.startswith(field), (field, expected)
    assert any(field.startswith(expected) or leaf in message for _, field, message in errors)


@settings(max_examples=200, deadline=None)
@given(item=BREAKAGES)
def test_plan_reports_broken_field(item: Breakage) -> None:
    inventory = validate_records(broken_records(item))

    assert sorted(inventory.accounts) == VALID
    assert inventory.complete is False
    assert_errors_name_field([(e.account, e.field, e.message()) for e in inventory.errors],
                             item)


@settings(max_examples=200, deadline=None)
@example(name="trial_user01\n")
@given(name=(odd_text | long_text).filter(lambda name: not ACCOUNT_NAME.fullmatch(name))
       | st.sampled_from(["Trial_User", "1trial", "trial user", "trial/user", "trial_ü",
                          "trial_user01\n"]))
def test_plan_reports_bad_account_name(name: str) -> None:
    raw = example_records(VALID)
    raw["password"][name] = dict(raw["password"]["trial_user01"], username=name[:64])

    inventory = validate_records(raw)

    assert sorted(inventory.accounts) == VALID
    [error] = inventory.errors
    assert error.field == "account"
    # The name is shown as its value is: cut, and with hidden characters as escapes.
    assert error.account == error.value
    assert len(error.account) <= 6 * ERROR_VALUE_MAX_CHARS + 1
    assert not any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in error.account)


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """One sandbox for every example of this module; starting one per example is too slow."""
    folder = tmp_path_factory.mktemp("sandbox")
    with start_servers(folder) as servers:
        requests.post(f"{servers.endpoints.aws_url}/moto-api/reset", timeout=10)
        (folder / STATE_FILE).write_text(json.dumps(asdict(servers.endpoints)),
                                         encoding="utf-8")
        yield servers


@pytest.fixture
def sandbox_env(module_sandbox: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    monkeypatch.setenv("RPA_SANDBOX_DIR", module_sandbox.endpoints.folder)
    return module_sandbox


# The fixtures only set RPA_SANDBOX_DIR, which is the same for every example.
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=BREAKAGES)
def test_whole_run_with_broken_record(sandbox_env: Servers, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      item: Breakage) -> None:
    inventory = tmp_path / "inventory.json"
    # JSON keeps NUL and lone surrogates, as a Vault record can.
    inventory.write_text(json.dumps(broken_records(item)), encoding="utf-8")

    status = main(["modeler", "--sandbox", "--output", "json", "--now", CORE,
                   "--inventory", str(inventory)])
    out, err = capsys.readouterr()

    assert status == 1
    assert "Traceback" not in err
    report = json.loads(out)
    assert_errors_name_field([(e["account"], e["field"], e["message"])
                              for e in report["errors"]], item)
    assert {a["account"] for a in report["actions"]} <= set(VALID)
    assert all(a["status"] == "done" for a in report["actions"])
    assert_valid_reconciled(sandbox_env)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=(odd_text | long_text).filter(lambda name: not ACCOUNT_NAME.fullmatch(name)))
def test_whole_run_with_bad_name(sandbox_env: Servers, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], name: str) -> None:
    raw = example_records(VALID)
    for folder in ("password", "modeler"):
        raw[folder][name] = example_records([TARGET])[folder][TARGET]
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(raw), encoding="utf-8")

    status = main(["modeler", "--sandbox", "--lang", "en", "--now", CORE,
                   "--inventory", str(inventory)])
    out, err = capsys.readouterr()

    assert status == 1
    assert "Traceback" not in err
    assert "invalid account name" in out
    assert_valid_reconciled(sandbox_env)


def assert_valid_reconciled(sandbox: Servers) -> None:
    """The valid accounts have the projects of their records on the stand-in."""
    for name in VALID:
        projects = sandbox.platform.projects(site_key(modeler_site(name)))
        assert {p["name"] for p in projects if p["owner"] == name} == {
            p["name"] for p in example_records([name])["modeler"][name]["projects"]}


def test_text_output_shows_field(sandbox_env: Servers, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The text report, the one people read, names the account and field as well."""
    item = Breakage("modeler", ("projects", 0, "cpu"), "\u202efour")
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(broken_records(item)), encoding="utf-8")

    status = main(["modeler", "--sandbox", "--lang", "en", "--now", CORE,
                   "--inventory", str(inventory)])
    out, err = capsys.readouterr()

    assert status == 1
    assert f"{TARGET}  modeler.projects[0].cpu" in out
    assert "Traceback" not in err
    assert str(EXAMPLES) not in out
