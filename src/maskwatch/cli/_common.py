"""Helpers shared by the command modules."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, TypeVar

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: exit statuses of every command (README, "Exit status"); ``watch`` adds 3 (events lost) and 4 (only spooled)
OK = 0
FAILED = 1  # a runtime failure: some inputs of a batch failed, an output could not be written
USAGE = 2  # usage, bad input or model errors (MaskWatchError)
INTERRUPTED = 130  # Ctrl-C


def fail(message: str, code: int = USAGE) -> "typer.Exit":
    from rich.markup import escape

    # escaped: messages carry paths and "maskwatch[extra]" that rich would take for markup
    err_console.print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The one error handler of every command (:func:`guarded` puts it around each): MaskWatch's own
    errors are one line on stderr and exit status 2; Ctrl-C prints "interrupted", exit status 130."""
    from ..errors import MaskWatchError

    try:
        yield
    except MaskWatchError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(INTERRUPTED) from None


F = TypeVar("F", bound=Callable[..., Any])


def guarded(command: F) -> F:
    """``command`` run inside :func:`user_errors` (typer still reads its signature and help)."""
    if getattr(command, "maskwatch_guarded", False):
        return command

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return command(*args, **kwargs)

    run.maskwatch_guarded = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def guard_commands(app: typer.Typer) -> None:
    """Every command of ``app`` and of its sub-command groups :func:`guarded`."""
    for command in app.registered_commands:
        if command.callback is not None:
            command.callback = guarded(command.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_commands(group.typer_instance)


def full_summaries(app: typer.Typer) -> None:
    """The command list of ``--help`` shows each command's first paragraph whole (wrapped), not cut at
    45 characters with "..."."""
    import inspect

    from typer.models import DefaultPlaceholder

    def first_paragraph(*texts: Any) -> str | None:
        for text in texts:
            if isinstance(text, str) and text.strip():
                return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
        return None

    for command in app.registered_commands:
        if command.short_help is None:
            command.short_help = first_paragraph(command.help, getattr(command.callback, "__doc__", None))
    for group in app.registered_groups:
        if group.short_help is None or isinstance(group.short_help, DefaultPlaceholder):
            info = group.typer_instance.info if group.typer_instance is not None else None
            group.short_help = first_paragraph(group.help, getattr(info, "help", None))
        if group.typer_instance is not None:
            full_summaries(group.typer_instance)


def os_error_line(exc: OSError) -> str:
    """``error: FILE: strerror`` for an OSError no command handled (an output that cannot be written)."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    return f"error: {where + ': ' if where else ''}{exc.strerror or exc}"


def writable_dir(path, what: str = "output"):
    """Fail in one line, before any work, when ``path`` (a folder, made if missing) cannot take a new
    file: read-only filesystem, no permission, a file in the way, no space or no inodes left."""
    from ..outputs import OutputError, check_writable_dir

    try:
        return check_writable_dir(path, what)
    except OutputError as exc:
        raise fail(str(exc), 1) from None


#: errors of writing (not reading): a full disk, quota, file size limit, read-only filesystem, I/O error
WRITE_ERRNOS = ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EIO")


@contextlib.contextmanager
def output_errors(path, what: str = "output") -> Iterator[None]:
    """A write under ``path`` that fails (full disk, read-only) ends the command with one line naming the
    file (``path`` when the error does not say which), exit status 1, not a traceback nor a bare strerror."""
    import errno

    try:
        yield
    except OSError as exc:
        if exc.errno not in {getattr(errno, name) for name in WRITE_ERRNOS if hasattr(errno, name)}:
            raise
        raise fail(f"{exc.filename or path}: cannot write {what} ({exc.strerror or exc})", 1) from None


def written_file(path, handle):
    """``handle`` (a file opened for ``path``) whose failing write or close (a full disk, /dev/full)
    ends the command with one line naming ``path``, not the bare "No space left on device"."""
    from ..outputs import NamedWrites

    return NamedWrites(path, handle, lambda message, first: fail(message, 1) if first else typer.Exit(1))


def warn(message: str) -> None:
    from rich.markup import escape

    err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", markup=True, soft_wrap=True, highlight=False)


def need_extra(module: str, extra: str) -> None:
    """Clear message when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise fail(f"this command needs '{module}': pip install \"maskwatch[{extra}]\"")


@contextlib.contextmanager
def jsonl_output(path) -> Iterator:
    """A line-buffered text file for JSON lines (``-``: stdout; None: nothing), closed at the end,
    so every line written before a crash or Ctrl-C is on disk."""
    if path is None:
        yield None
        return
    if str(path) == "-":
        yield typer.get_text_stream("stdout")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w", buffering=1)
    except OSError as exc:
        raise fail(f"{path}: cannot write ({exc.strerror or exc})") from None
    named = written_file(path, handle)
    try:
        yield named
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        raise
    named.close()


def batch_progress(total: int, label: str, quiet: bool = False):
    """A progress bar on stderr for batches of more than a handful of inputs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True, disable=total <= 5 or quiet)


class ImageBatch:
    """Walks found inputs behind a progress bar: inputs that could not be found are reported and
    counted, and the caller reports its own failures with :meth:`fail`; ``failures`` is the total."""

    def __init__(self, found: list, label: str, quiet: bool = False):
        self.found = found
        self.label = label
        self.quiet = quiet
        self.failures = 0

    def fail(self, message: str) -> None:
        self.failures += 1
        warn(message)

    def __iter__(self) -> Iterator:
        with batch_progress(len(self.found), self.label, self.quiet) as progress:
            task = progress.add_task(self.label, total=len(self.found))
            for item in self.found:
                progress.advance(task)
                if item.error:
                    self.fail(f"{item.path}: {item.error}")
                    continue
                yield item
