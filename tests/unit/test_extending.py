"""docs/extending.md's worked example, run: an eighth domain event added to a copy of the
project exactly as the page says, then the catalogue and schema tests and a render there.
Fails when the page and the code drift apart, or when an event needs more files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from core.settings import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"<!-- example: (new|subject|after|before) (\S+)(?: ([^\n]*?))? -->\n"
                   r"```\w*\n(.*?)```", re.DOTALL)
COPIED = ("core", "processors", "providers", "streams", "flowmail", "schemas", "templates")
CODE_AND_CONFIG = {"schemas/review_requested.v1.avsc", "schemas/registry.json",
                   "core/catalogue.py", "processors/routing.py"}


def _copy(into: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    for name in COPIED:
        shutil.copytree(PROJECT_ROOT / name, into / name, ignore=ignore)
    (into / "docs").mkdir()
    shutil.copy(PROJECT_ROOT / "docs" / "contracts.md", into / "docs")
    (into / "tests" / "unit").mkdir(parents=True)
    for name in ("tests/__init__.py", "tests/unit/__init__.py", "tests/unit/test_catalogue.py",
                 "tests/unit/test_schema_evolution.py"):
        shutil.copy(PROJECT_ROOT / name, into / name)


def _insert(path: Path, anchor: str, block: str, after: bool) -> None:
    lines = path.read_text().splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if anchor in line][:1] or [None]
    assert at is not None, f"docs/extending.md: {anchor!r} is not in {path.name} any more"
    at += 1 if after else 0
    path.write_text("".join(lines[:at]) + block + "".join(lines[at:]))


def apply_page(root: Path) -> set[str]:
    """Apply every block of the page; the files it touched."""
    touched = set()
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 10, "docs/extending.md lost its worked example"
    for kind, name, where, block in blocks:
        path = root / name
        if kind == "new":
            assert not path.exists(), f"{name} exists already"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
        elif kind == "subject":
            registry = json.loads(path.read_text())
            registry["subjects"][where] = json.loads(block)
            path.write_text(json.dumps(registry, indent=2, ensure_ascii=False) + "\n")
        else:
            _insert(path, where, block, after=kind == "after")
        touched.add(name)
    return touched


RENDER = textwrap.dedent("""
    import os
    import core
    assert core.__file__.startswith(os.environ["PYTHONPATH"]), core.__file__  # the copy
    from core.catalogue import BY_TOPIC, EmailType
    from flowmail.publisher import default_key
    from flowmail.preview import render_preview
    from processors.rendering import Renderer
    kind = EmailType("review_request")
    for locale in ("de", "en"):
        email = render_preview(Renderer(), kind, locale)
        assert "Trekking tent" in email.subject and "review/SF-200001" in email.html, email.subject
        assert "Lena" in email.text
    assert default_key("review.requested", BY_TOPIC["review.requested"].example()) == "cus-1"
    print("rendered")
""")


def test_the_worked_example_adds_an_event_with_four_code_files(tmp_path):
    _copy(tmp_path)
    touched = apply_page(tmp_path)
    code = {name for name in touched if name.endswith((".py", ".avsc"))
            or (name.endswith(".json") and "/examples/" not in name)}
    assert code == CODE_AND_CONFIG
    data = touched - code
    assert all(name.startswith(("templates/review_request/", "schemas/examples/", "docs/"))
               for name in data), data
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), "tests/unit/test_catalogue.py", "tests/unit/test_schema_evolution.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "review.requested" in tests.stdout or "passed" in tests.stdout
    rendered = subprocess.run([sys.executable, "-c", RENDER], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0 and "rendered" in rendered.stdout, rendered.stderr[-3000:]
