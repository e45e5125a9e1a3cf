"""Kron's exceptions.

Every exception Kron raises on purpose derives from :class:`KronError` and also from the builtin
exception people already catch for that kind of problem (``ValueError`` for bad arguments,
``RuntimeError`` for runtime state, ``KeyError`` for unknown timers).
"""

from __future__ import annotations


class KronError(Exception):
    """Base class of all Kron errors."""


class InvalidArgumentError(KronError, ValueError):
    """An argument has a bad value. ``arg`` names it, ``value`` shows it. Nothing was written."""

    def __init__(self, message: str, arg: str = "", value: object = None) -> None:
        super().__init__(message)
        self.arg = arg
        self.value = value


class InvalidArgumentTypeError(KronError, TypeError):
    """An argument has the wrong type. ``arg`` names it. Nothing was written."""

    def __init__(self, message: str, arg: str = "") -> None:
        super().__init__(message)
        self.arg = arg


class TimerNotFoundError(KronError, KeyError):
    """No timer has this name."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class TimerNotRunnableError(KronError, RuntimeError):
    """The timer exists but cannot run now (it is orphaned: no function is registered)."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class AlreadyStartedError(KronError, RuntimeError):
    """``start()`` was called while this process's runtime is already running."""

    def __init__(self, message: str, data_dir: str = "") -> None:
        super().__init__(message)
        self.data_dir = data_dir


class NotStartedError(KronError, RuntimeError):
    """The operation needs a running runtime (or one that ran): call ``kron.start()`` first."""


class RuntimeUnreachableError(KronError, RuntimeError):
    """This process is a standby and the runtime that owns the data directory could not be
    reached, refused, or did not answer; the message says whether it may have acted."""


class ForkedProcessError(KronError, RuntimeError):
    """This process was forked from one that had started Kron: the runtime's threads did not
    come along. Call ``kron.start(..., standby=True)`` after the fork, in each process."""


class StorageError(KronError, RuntimeError):
    """The data directory could not be opened, read or written. ``path`` names the file."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class DataDirIsAFileError(InvalidArgumentError, StorageError):
    """``data_dir`` is a file or lies under one: a bad argument (``ValueError``), and still the
    ``StorageError`` that earlier versions raised for it."""

    def __init__(self, message: str, arg: str = "", value: object = None) -> None:
        InvalidArgumentError.__init__(self, message, arg, value)
        self.path = str(value)


class DataDirLockedError(StorageError):
    """Another process owns the data directory. ``pid`` is the owner's process id, if known."""

    def __init__(self, message: str, data_dir: str = "", pid: int | None = None) -> None:
        super().__init__(message, data_dir)
        self.data_dir = data_dir
        self.pid = pid


class SchemaVersionError(StorageError):
    """The database was written by a newer Kron; upgrade to open it."""

    def __init__(self, message: str, path: str = "", found: int = 0, supported: int = 0) -> None:
        super().__init__(message, path)
        self.found = found
        self.supported = supported


class CorruptStorageError(StorageError):
    """The database file is not a Kron database or is damaged. Kron refuses to start over it."""
