"""Layering is checked, not described: who may import whom inside pmws, and no import cycle.

The graph comes from the source (`ast`), so a lazy import inside a function counts for direction (it still
couples the modules) but not for cycles (it cannot deadlock a first import); `if TYPE_CHECKING:` imports
count for neither.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.unit.test_core_is_pure import CORE

PACKAGE = Path(__file__).resolve().parents[2] / "pmws"
ORCHESTRATORS = {"pmws.discover", "pmws.sample", "pmws.run", "pmws.continuous", "pmws.gate", "pmws.books"}
EDGE_PREFIXES = ("pmws.archive", "pmws.transfer", "pmws.read")
EDGE_MODULES = {
    "pmws.feed",
    "pmws.rest",
    "pmws.gamma",
    "pmws.metrics",
    "pmws.lock",
    "pmws.pool",
    "pmws.recorder",
    "pmws.retry",
    "pmws.verifier",
    "pmws.wsconn",
}


def is_edge(module: str) -> bool:
    return module in EDGE_MODULES or any(module == p or module.startswith(p + ".") for p in EDGE_PREFIXES)


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@cache
def modules() -> dict[str, Path]:
    """Every module of pmws by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _target(node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
    """The pmws module an import names: `from pmws.a import b` is pmws.a.b if that is a module."""
    if isinstance(node, ast.Import):
        return alias.name if alias.name.startswith("pmws") else None
    base = node.module or ""
    if node.level or not in_package(base, "pmws"):
        return None
    return f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _walk(body: list[ast.stmt], *, top: bool) -> list[tuple[str, bool]]:
    """(imported pmws module, at module level?) for every import under `body`."""
    found: list[tuple[str, bool]] = []
    for stmt in body:
        if isinstance(stmt, ast.If) and _is_type_checking(stmt):
            found += _walk(stmt.orelse, top=top)
            continue
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            found += [(t, top) for a in stmt.names if (t := _target(stmt, a)) is not None]
            continue
        nested = isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)  # a class body runs at import
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(stmt, field, None) or []
            stmts = [c for c in children if isinstance(c, ast.stmt)]
            stmts += [s for h in children if isinstance(h, ast.ExceptHandler) for s in h.body]
            found += _walk(stmts, top=top and not nested)
    return found


@cache
def imports() -> dict[str, list[tuple[str, bool]]]:
    return {name: _walk(ast.parse(path.read_text()).body, top=True) for name, path in modules().items()}


def edges(*, module_level_only: bool = False) -> set[tuple[str, str]]:
    return {
        (source, target)
        for source, found in imports().items()
        for target, top in found
        if target != "pmws" and target != source and (top or not module_level_only)
    }


def violations(rule: str, pairs: set[tuple[str, str]]) -> list[str]:
    return sorted(f"{rule}: {a} imports {b}" for a, b in pairs)


def test_the_graph_sees_the_imports_it_must() -> None:
    """Guard the guard: a walker that found nothing would pass every rule below."""
    graph = edges()
    assert ("pmws.transfer.upload", "pmws.transfer.remote") in graph
    assert ("pmws.cli.base", "pmws.sim") in graph  # lazy, inside `simulated()`
    assert ("pmws.cli", "pmws.cli.run") in edges(module_level_only=True)
    assert ("pmws.sim.ws", "pmws.sim.server") not in graph  # under `if TYPE_CHECKING:` only
    assert len(graph) > 100


def test_only_the_cli_imports_the_cli() -> None:
    bad = {(a, b) for a, b in edges() if in_package(b, "pmws.cli") and not in_package(a, "pmws.cli")}
    assert violations("cli", bad - {("pmws.__main__", "pmws.cli")}) == []


def test_the_core_imports_only_the_core() -> None:
    core = {f"pmws.{name}" for name in CORE}
    bad = {(a, b) for a, b in edges() if a in core and b not in core}
    assert violations("core", bad) == []


def test_edges_never_import_orchestrators_or_the_cli() -> None:
    bad = {
        (a, b)
        for a, b in edges()
        if is_edge(a) and (b in ORCHESTRATORS or in_package(b, "pmws.cli") or in_package(b, "pmws.sim"))
    }
    assert violations("edge", bad) == []


def test_commands_do_not_import_each_other_across_transfer() -> None:
    commands = {"pmws.transfer.upload", "pmws.transfer.verify"}
    bad = {(a, b) for a, b in edges() if a in commands and b in commands}
    assert violations("command", bad) == []


def test_the_simulator_stands_alone_and_only_the_cli_starts_it() -> None:
    """The simulator uses the core (the book hash) but no recorder I/O; the recorder never needs it."""
    core = {f"pmws.{name}" for name in CORE}
    inside = {(a, b) for a, b in edges() if in_package(a, "pmws.sim") and not in_package(b, "pmws.sim")}
    assert violations("sim", {(a, b) for a, b in inside if b not in core}) == []
    outside = {
        (a, b)
        for a, b in edges()
        if in_package(b, "pmws.sim") and not (in_package(a, "pmws.sim") or in_package(a, "pmws.cli"))
    }
    assert violations("recorder", outside - REPLAY_USES_SIM_HTTP) == []


#: The replay serves HTTP with the simulator's small h11 server: the server only, never the simulator.
REPLAY_USES_SIM_HTTP = {("pmws.replay.http", "pmws.sim.http"), ("pmws.replay.server", "pmws.sim.http")}


def test_the_replay_uses_the_core_the_archive_reader_and_no_recorder() -> None:
    """`pmws replay` stands alone like the simulator: it reads archives (`pmws.read`), it never records or
    uploads."""
    core = {f"pmws.{name}" for name in CORE}
    allowed = core | {"pmws.archive.reader"}
    inside = {(a, b) for a, b in edges() if in_package(a, "pmws.replay") and not in_package(b, "pmws.replay")}
    outside_read = {(a, b) for a, b in inside if b not in allowed and not in_package(b, "pmws.read")}
    assert violations("replay", outside_read - REPLAY_USES_SIM_HTTP) == []
    outside = {
        (a, b) for a, b in edges() if in_package(b, "pmws.replay") and not in_package(a, "pmws.replay")
    }
    assert violations("replay", {(a, b) for a, b in outside if not in_package(a, "pmws.cli")}) == []


def find_cycles(graph: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    succ: dict[str, list[str]] = {}
    for a, b in graph:
        succ.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in succ.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(succ):
        if node not in index:
            visit(node)
    return found


def test_find_cycles_finds_one() -> None:
    assert find_cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert find_cycles({("a", "b"), ("b", "c")}) == []


def test_no_import_cycle_among_pmws_modules() -> None:
    assert find_cycles(edges(module_level_only=True)) == []
