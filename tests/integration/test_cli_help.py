"""The root command: --version, and help that fits 80 columns without cutting text off."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from maskwatch import __version__
from maskwatch.cli import COMMAND_MODULES, app


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_version_needs_no_command():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"maskwatch {__version__}"


def _commands() -> list[tuple[str, ...]]:
    import click
    import typer

    root = typer.main.get_command(app)
    found = []
    for name, cmd in root.commands.items():
        found.append((name,))
        if isinstance(cmd, click.Group):
            found += [(name, sub) for sub in cmd.commands]
    return found


def test_every_command_is_listed():
    names = {c[0] for c in _commands()}
    assert {"detect", "synth", "watch", "events", "eval"} <= names and len(COMMAND_MODULES) <= len(names)


@pytest.mark.parametrize("command", [(), *_commands()], ids=lambda c: " ".join(c) or "maskwatch")
def test_help_fits_80_columns_uncut(command):
    text = _help(*command)
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    # neither click's "..." for a command's cut description nor rich's "…" for a cut default
    assert "…" not in text
    assert not [line for line in text.splitlines() if line.rstrip().endswith("...") and "[" not in line]
    assert "╭" not in text  # plain help: rich's boxes leave a 25-column help text at 80 columns
