"""Errors MaskWatch raises on purpose. Each carries a message a user can act on."""


class MaskWatchError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class InputError(MaskWatchError):
    """An input file or folder cannot be used (unreadable, corrupt, wrong format, too large)."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelError(MaskWatchError):
    """A model cannot be found, downloaded, verified or loaded."""


class DatasetError(MaskWatchError):
    """A dataset file is malformed in a way that stops the run."""
