"""The native runtime (Rust). Use the functions of the ``kron`` package instead."""

import builtins
from typing import Any, Callable

__version__: str
DEFAULT_HISTORY_LIMIT: int

def register(
    name: str,
    fn_: Callable[..., Any],
    fn_name: str,
    takes_context: bool,
    is_async: bool,
    kind: str,
    value: str | int,
    timezone: str,
    max_attempts: int,
    overlap: str,
    catchup: str,
    jitter: str | int | None,
) -> None: ...
class Gate:
    """Whether the next callback of a batch may begin (false once the runtime shuts down)."""

    def begin(self) -> bool: ...

def start(
    data_dir: str,
    max_workers: int,
    durability: str,
    runner: Callable[[builtins.list[Any], Gate], builtins.list[tuple[bool, float, str | None]]],
    log: Callable[[int, str], None],
    history_limit: int | None = None,
) -> None: ...
def shutdown(timeout: float) -> int: ...
def is_running() -> bool: ...
def status(name: str) -> dict[str, Any] | None: ...
def list() -> builtins.list[dict[str, Any]]: ...
def history(name: str, limit: int) -> builtins.list[dict[str, Any]]: ...
def pause(name: str) -> None: ...
def resume(name: str) -> None: ...
def trigger(name: str) -> str: ...
def remove(name: str) -> None: ...
def cli_main(argv: builtins.list[str]) -> int: ...
