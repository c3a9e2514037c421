"""Every `streetwatch` command in the README parses with the real command line, as pasted.

Each example is split out of the README's code blocks and handed to the real Click/Typer parser (the
command's own code is not run here; the commands that do work — detect --sample, cases, serve, daemon,
train, eval, telemetry — are run end to end by their own tests). An option that was renamed, a
subcommand that moved, or a `[--optional]` written as literal text fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from streetwatch.cli import app
from tests.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    out = []
    for block in blocks:
        for line in block.splitlines():
            code = line.split("  #")[0].strip()
            for part in code.split("&&"):
                part = part.strip()
                part = part.removeprefix(".venv/bin/")
                if part.startswith("streetwatch "):
                    out.append(part)
    return out


def parse(args: list[str]):
    """Parse `args` down to the leaf command (a Click context), as the shell would hand them to `streetwatch`."""
    command = typer.main.get_command(app)
    ctx = command.make_context("streetwatch", list(args), resilient_parsing=False)
    while hasattr(command, "resolve_command"):  # a group (Typer may vendor its own Click)
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        name, sub, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        assert sub is not None, f"no command {name!r}"
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


COMMANDS = readme_commands()


def test_the_readme_has_the_examples_we_expect():
    assert len(COMMANDS) >= 15
    assert "streetwatch detect --sample" in COMMANDS  # the first of the two set-up commands


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_parses(line: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths in examples need not exist: only the parse is checked here
    assert "[" not in line.split("#")[0], f"literal optional syntax in: {line}"
    args = shlex.split(line)[1:]
    try:
        ctx = parse(args)
    except Exception as exc:  # Click's UsageError/BadParameter, whichever Click Typer ships
        if type(exc).__name__ in ("BadParameter", "UsageError") and "does not exist" in str(exc):
            return  # an example path (footage/, cameras.yaml) that is not here: the parse got that far
        raise AssertionError(f"{line}: {type(exc).__name__}: {exc}") from None
    assert ctx.command.callback is not None
