"""``maskwatch config``: check a venue config, or write a commented example."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import fail

config_app = typer.Typer(help="The venue config of `maskwatch serve --config`.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("check")
def check(file: Path = typer.Argument(..., help="The YAML config.")) -> None:
    """Validate FILE and print the resolved config (absolute paths, every default filled in); exit 2 on error."""
    from ..service.config import load_config

    config = load_config(file)  # a ConfigError is the one error line, exit status 2
    typer.echo(config.to_yaml(), nl=False)


@config_app.command("example")
def example(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write it here instead of stdout.")) -> None:
    """A commented example config that passes `maskwatch config check`."""
    from ..service.config import example_config

    if out is None:
        typer.echo(example_config(), nl=False)
        return
    if out.exists():
        raise fail(f"{out} exists already; not overwriting it")
    out.write_text(example_config(), encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)
