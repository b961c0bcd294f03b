"""The sans-I/O core imports no sockets, no HTTP client and no event loop (STYLE.md)."""

from __future__ import annotations

import subprocess
import sys

#: The flat, sans-I/O core at the top of pmws: one declared list, checked here and by test_layers.py
#: (the core imports only the core).
CORE = [
    "errors",
    "config",
    "layout",
    "protocol",
    "envelope",
    "book",
    "tracker",
    "coverage",
    "markets",
    "checks",
    "stats",
    "sharding",
    "subscriptions",
    "rotation",
    "backoff",
    "report",
    "rules",
    "health",
    "manifest",
    "channel",
]


def test_importing_the_core_pulls_in_no_io_library() -> None:
    code = (
        "import sys\n"
        + "".join(f"import pmws.{name}\n" for name in CORE)
        + "print(sorted({'websockets', 'httpx', 'asyncio', 'rich', 'typer'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
