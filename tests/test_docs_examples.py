"""Runs the Python examples of README.md and docs/*.md, so the documentation cannot drift from the code.

The convention for fenced code blocks in those files:

* ```` ```python ```` - a complete program. It is run here in a fresh Python process, with an
  empty temporary directory as its working directory (the examples keep their data directory in
  ``.kron`` there), and must exit with status 0 within ``TIME_BUDGET`` seconds. Examples are
  written to finish in a few seconds: short intervals, and ``kron.shutdown()`` at the end.
* ```` ```python snippet ```` - a fragment (it uses names it does not define, or paths of a real
  deployment). It is not run, only compiled, so it stays valid Python.
* Any other word after ``python``, or a ``py`` / ``python3`` tag, is an error: such a block would
  silently not be run.

Blocks in other languages (``sh``, ``text``, ``mermaid``, ...) are ignored.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import kron

ROOT = Path(__file__).resolve().parent.parent
#: Seconds one example may take, generous for slow machines; examples need a few.
TIME_BUDGET = 30.0
RUN_TAG = ()
SNIPPET_TAG = ("snippet",)
AMBIGUOUS_LANGUAGES = {"py", "python3"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    tags: tuple[str, ...]
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _documents() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    readme = ROOT / "README.md"
    return ([readme] if readme.exists() else []) + docs


def _blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent = len(opening["indent"])
        fence = opening["fence"]
        words = opening["info"].split()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            text = lines[j]
            body.append(text[min(indent, len(text) - len(text.lstrip())) :])
            j += 1
        language = words[0].lower() if words else ""
        blocks.append(Block(path, i + 1, language, tuple(words[1:]), "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [block for path in _documents() for block in _blocks(path)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.language == "python" or b.language in AMBIGUOUS_LANGUAGES]
RUNNABLE = [b for b in PYTHON_BLOCKS if b.language == "python" and b.tags == RUN_TAG]
SNIPPETS = [b for b in PYTHON_BLOCKS if b.language == "python" and b.tags == SNIPPET_TAG]


def _env() -> dict[str, str]:
    """This environment, where the examples import the same ``kron`` as the tests do."""
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    package_parent = Path(kron.__file__).resolve().parent.parent
    if package_parent.name not in ("site-packages", "dist-packages"):
        # A source tree on sys.path (e.g. python/): the child needs it too.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package_parent), env.get("PYTHONPATH")) if p)
    return env


def _text(output: str | bytes | None) -> str:
    # After a timeout, the partial output is bytes even with text=True.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def test_python_blocks_are_tagged_run_or_snippet() -> None:
    wrong = [
        f"{b.where}: ```{' '.join((b.language, *b.tags))}"
        for b in PYTHON_BLOCKS
        if b.language != "python" or b.tags not in (RUN_TAG, SNIPPET_TAG)
    ]
    assert not wrong, (
        "Tag Python blocks ```python (a complete program, run by this test) or ```python snippet "
        "(a fragment, only compiled):\n" + "\n".join(wrong)
    )


@pytest.mark.parametrize("block", SNIPPETS, ids=[b.where for b in SNIPPETS])
def test_snippet_compiles(block: Block) -> None:
    try:
        compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as error:
        pytest.fail(f"{block.where}: the snippet is not valid Python: {error}")


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    hint = "(if it is a fragment, not a complete program, tag it ```python snippet)"
    try:
        result = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIME_BUDGET,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(
            f"{block.where}: the example did not finish within {TIME_BUDGET:.0f} s {hint}\n"
            f"--- stdout ---\n{_text(timeout.stdout)}\n--- stderr ---\n{_text(timeout.stderr)}"
        )
    assert result.returncode == 0, (
        f"{block.where}: the example exited with status {result.returncode} {hint}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
