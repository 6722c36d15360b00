"""Helpers shared by the command modules."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> "typer.Exit":
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn MaskWatch's own errors into one line on stderr and exit status 2."""
    from ..errors import MaskWatchError

    try:
        yield
    except MaskWatchError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", markup=True, soft_wrap=True, highlight=False)


def need_extra(module: str, extra: str) -> None:
    """Clear message when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise fail(f"this command needs '{module}': pip install \"maskwatch[{extra}]\"")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
