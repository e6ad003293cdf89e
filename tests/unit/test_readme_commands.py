"""The commands the README shows exist, with the options it shows: renaming a command, a
subcommand, an option or a make target without updating the README fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from flowmail.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")


def shown_commands() -> list[tuple[str, str]]:
    """(doc, command line) for every `flowmail ...`/`make ...` in code: fenced or inline."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        code = [line for block in FENCED.findall(text) for line in block.splitlines()]
        code += INLINE.findall(FENCED.sub("", text))
        for line in code:
            line = re.sub(r"^\s*(\$ )?(\.venv/bin/|FLOWMAIL_\S+ )*", "", line.split("#")[0])
            if line.startswith(("flowmail ", "make ")):
                found.append((doc.name, line.strip()))
    return found


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = main
    while words and isinstance(command, click.Group) and not words[0].startswith("-"):
        if words[0] not in command.commands:
            break
        command = command.commands[words.pop(0)]
    return command, words


def test_every_flowmail_command_and_option_shown_exists():
    checked = 0
    for doc, line in shown_commands():
        if not line.startswith("flowmail "):
            continue
        try:
            words = shlex.split(line)[1:]
        except ValueError:
            continue
        if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
            continue  # prose such as "flowmail turns ..." is not a command line
        command, rest = resolve(list(words))
        assert command is not main, f"{doc}: `{line}`: no such command {words[0]!r}"
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for word in rest:
            name = word.strip("[]").split("=")[0]
            if name.startswith("--"):
                assert name in options, f"{doc}: `{line}`: {command.name} has no {name}"
        checked += 1
    assert checked >= 10


def test_the_readme_shows_every_command():
    readme = [line for doc, line in shown_commands() if doc == "README.md"]
    shown = {line.split()[1] for line in readme if line.startswith("flowmail ")}
    assert set(main.commands) <= shown, f"not in the README: {set(main.commands) - shown}"


def test_every_make_target_shown_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    shown = {line.split()[1] for _, line in shown_commands()
             if line.startswith("make ") and re.fullmatch(r"[a-z-]+", line.split()[1])}
    assert {"demo", "test", "bench"} <= shown
    assert shown <= targets, f"README shows make targets that do not exist: {shown - targets}"
