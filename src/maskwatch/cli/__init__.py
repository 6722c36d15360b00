"""The ``maskwatch`` command. Each sub-command lives in its own module and registers itself."""

from __future__ import annotations

import importlib

import typer
from typer.models import DefaultPlaceholder

from . import _common


class _Commands(typer.core.TyperGroup):
    """The root command: each command's first sentence in full, wrapped (click cuts it to one line)."""

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="maskwatch",
    cls=_Commands,
    help="Check whether people wear face masks in photos, video files and live cameras.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit status of every command: 0 done; 1 a runtime failure (some inputs failed); 2 usage, bad input "
           "or model errors; 130 interrupted (watch finishes its outputs and exits 0; 3: events lost, 4: events "
           "only spooled).",
    rich_markup_mode=None,  # click's plain help: at 80 columns rich's tables leave the help text a narrow column
)


@app.callback(invoke_without_command=True)  # so that `maskwatch --version` needs no command
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """Check whether people wear face masks in photos, video files and live cameras."""
    if version:
        from .. import __version__

        typer.echo(f"maskwatch {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(_common.USAGE)


#: modules under maskwatch.cli that define ``register(app)``
COMMAND_MODULES = ["detect", "classify", "train", "evaluate", "synth", "watch", "events", "serve", "config", "batch",
                   "quantize"]

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_name}":
            raise
        continue
    _module.register(app)
_common.guard_commands(app)  # one error handler and exit-status scheme for every command
_common.full_summaries(app)

for _group in app.registered_groups:  # eval, config: their commands listed in full too
    if isinstance(_group.cls, DefaultPlaceholder) and isinstance(_group.typer_instance.info.cls, DefaultPlaceholder):
        _group.cls = _Commands


def main() -> None:
    import sys

    try:
        app()
    except OSError as exc:  # last resort: an output that cannot be written (read-only or full folder, ...)
        sys.stderr.write(_common.os_error_line(exc) + "\n")
        _exit(_common.FAILED)
    except SystemExit as done:
        _exit(done.code)
    _exit(_common.OK)


def _exit(code: object) -> None:
    """Leave with ``code``; past an abandoned stream open (a camera that never answered, then SIGTERM)
    through ``os._exit``: a normal exit would abort inside FFmpeg ("terminate called", status 134)."""
    import os
    import sys

    sources = sys.modules.get("maskwatch.video.sources")
    if sources is not None and sources.stray_opens():
        if isinstance(code, str):
            sys.stderr.write(code + "\n")
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0)
    raise SystemExit(code)
