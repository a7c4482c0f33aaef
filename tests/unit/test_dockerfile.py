"""The Dockerfile cannot be built here (no Docker engine); check its shape instead: a builder stage makes the
wheel, the final stage installs the locked dependencies and that wheel, never the checkout, and runs unprivileged."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            named = len(words) >= 3 and words[-2].upper() == "AS"
            stages.append(Stage(words[0], words[-1] if named else None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


def _pip_installs(stage: Stage) -> list[list[str]]:
    found = []
    for run in stage.args("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if "pip" in " ".join(words[:3]) and "install" in words:
                found.append(words)
    return found


def test_is_a_multi_stage_build_whose_builder_makes_the_wheel() -> None:
    stages = _stages()
    assert len(stages) >= 2
    builder = stages[0]
    assert builder.name
    assert any("pip wheel" in run or "-m build" in run for run in builder.args("RUN"))
    copied = {word for copy in builder.args("COPY") for word in copy.split()[:-1]}
    assert {"pyproject.toml", "setup.py", "ordersctl", "sql"} <= copied  # setup.py maps sql/ into the wheel
    final = stages[-1]
    assert any(f"--from={builder.name}" in copy for copy in final.args("COPY")), "the final stage takes the wheel"


def test_the_final_stage_installs_the_locked_dependencies_then_the_wheel_without_deps() -> None:
    final = _stages()[-1]
    installs = _pip_installs(final)
    locked = [words for words in installs if any(Path(word).name == "requirements.lock" for word in words)]
    assert locked and "--require-hashes" in locked[0]
    wheels = [words for words in installs if any(word.endswith(".whl") for word in words)]
    assert wheels and "--no-deps" in wheels[0]
    assert installs.index(locked[0]) < installs.index(wheels[0])
    assert any("requirements.lock" in copy for copy in final.args("COPY"))


def test_no_editable_install_and_no_source_tree_in_the_final_stage() -> None:
    for stage in _stages():
        for words in _pip_installs(stage):
            assert "-e" not in words and "--editable" not in words, words
    final = _stages()[-1]
    for copy in final.args("COPY"):
        assert "--from=" in copy or "ordersctl" not in copy.split(), f"the final stage copies the checkout: {copy}"


def test_runs_as_a_non_root_user() -> None:
    users = _stages()[-1].args("USER")
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
