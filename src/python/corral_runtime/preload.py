"""What a fork server imports before it forks: uvicorn's parts, and the app's third-party imports.

The app's own modules are found and read (ast), never run: each forked worker imports them itself,
so a HUP's new code and the app's import-time side effects (connections, threads) stay per worker.
What they import from outside the app's own directories (site-packages, the standard library) is
imported here once, and shared by every worker of the generation. With --preload the app itself is
imported here too (fork_server.py).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("corral.fork_server")


def own_roots(settings: dict[str, Any]) -> list[str]:
    """The directories whose modules are the app's own: --app-dir, the working directory, --pythonpath."""
    roots = [os.path.abspath(str(settings.get("app_dir") or "."))]
    roots.append(os.getcwd())
    roots.extend(os.path.abspath(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry)
    unique: list[str] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


class ModuleMap:
    """Finds the source file of the app's own modules without importing anything."""

    def __init__(self, roots: list[str], app_top: str) -> None:
        self.roots = roots
        self.app_top = app_top

    def top_location(self, top: str) -> str | None:
        """The file or package directory of a top-level module of the app's own, else None."""
        for root in self.roots:
            package = os.path.join(root, top)
            if os.path.isdir(package) and top.isidentifier():
                return package
            if os.path.isfile(package + ".py"):
                return package + ".py"
        if top == self.app_top:
            # An installed app (site-packages): still the app's own code. find_spec of a top-level
            # name imports nothing.
            spec = importlib.util.find_spec(top)
            if spec is not None:
                if spec.submodule_search_locations:
                    return list(spec.submodule_search_locations)[0]
                if spec.origin and spec.origin.endswith(".py"):
                    return spec.origin
        return None

    def is_own(self, name: str) -> bool:
        return self.top_location(name.split(".")[0]) is not None

    def source(self, name: str) -> tuple[str, bool] | None:
        """(file, is_package) of an own module, None for a namespace directory or a missing one."""
        parts = name.split(".")
        location = self.top_location(parts[0])
        if location is None:
            return None
        for part in parts[1:]:
            if not os.path.isdir(location):
                return None
            package = os.path.join(location, part)
            location = package if os.path.isdir(package) else package + ".py"
        if os.path.isdir(location):
            init = os.path.join(location, "__init__.py")
            return (init, True) if os.path.isfile(init) else None
        return (location, False) if os.path.isfile(location) else None


def run_at_import(tree: ast.Module) -> Iterator[ast.stmt]:
    """The statements a module runs when imported: not function bodies, not `if TYPE_CHECKING:` blocks."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                pending.extend(child for child in children if isinstance(child, ast.stmt))
            if field == "handlers" and isinstance(children, list):
                for handler in children:
                    pending.extend(handler.body)
        match_statement = getattr(ast, "Match", None)  # Python 3.10+
        if match_statement is not None and isinstance(node, match_statement):
            for case in node.cases:  # type: ignore[attr-defined]
                pending.extend(case.body)


def resolve_relative(module: str | None, level: int, current: str, is_package: bool) -> str:
    package = current if is_package else current.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


def third_party_imports(app_module: str, settings: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The imports the app's own modules make at import time from outside the app's own code, in the
    order first met: (module, names imported from it). The app's modules are read, never run."""
    modules = ModuleMap(own_roots(settings), app_module.split(".")[0])
    found: dict[str, list[str]] = {}
    queue = [app_module]
    seen: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        # A package's __init__ runs before its submodule.
        parent = name.rpartition(".")[0]
        if parent and parent not in seen:
            queue.append(parent)
        located = modules.source(name)
        if located is None:
            continue
        path, is_package = located
        try:
            with open(path, "rb") as source:
                tree = ast.parse(source.read(), filename=path)
        except (OSError, SyntaxError, ValueError):
            # The worker's own import reports it, with its traceback.
            continue
        for node in run_at_import(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    if modules.is_own(target):
                        queue.append(target)
                    else:
                        found.setdefault(target, [])
            elif isinstance(node, ast.ImportFrom):
                base = resolve_relative(node.module, node.level, name, is_package) if node.level else (node.module or "")
                if not base or base == "__future__":
                    continue
                names = [alias.name for alias in node.names if alias.name != "*"]
                if node.level or modules.is_own(base):
                    queue.append(base)
                    # `from package import submodule`
                    queue.extend(f"{base}.{item}" for item in names)
                else:
                    found.setdefault(base, []).extend(item for item in names if item not in found.get(base, []))
    return list(found.items())


def import_quietly(name: str) -> bool:
    """Imports one module; a module that will not import is left to the worker (imported later, or never)."""
    try:
        with warnings.catch_warnings():
            # The workers show a module's import warnings if they import it; here they would be shown twice.
            warnings.simplefilter("ignore")
            importlib.import_module(name)
        return True
    except BaseException as exc:  # noqa: BLE001 - a module's import runs its code, whatever it raises
        log.debug("not preloaded: %s (%s: %s)", name, type(exc).__name__, exc)
        return False


def preload_imports(imports: list[tuple[str, list[str]]]) -> int:
    """Imports each module, and a name imported from it that is a submodule; the count imported."""
    count = 0
    for module, names in imports:
        if not import_quietly(module):
            continue
        count += 1
        loaded = sys.modules.get(module)
        for item in names:
            if loaded is not None and not hasattr(loaded, item) and import_quietly(f"{module}.{item}"):
                count += 1
    return count


def uvicorn_modules(options: dict[str, Any]) -> list[str]:
    """The modules uvicorn.Config.load and the loop factory import for these settings."""
    from uvicorn.config import HTTP_PROTOCOLS, LIFESPAN, LOOP_FACTORIES, WS_PROTOCOLS

    targets: list[str | None] = ["uvicorn.server:Server", "uvicorn.middleware.proxy_headers:ProxyHeadersMiddleware"]
    http, ws = options.get("http", "auto"), options.get("ws", "auto")
    if isinstance(http, str):
        targets.append(HTTP_PROTOCOLS.get(http, http))
    if isinstance(ws, str):
        targets.append(WS_PROTOCOLS.get(ws, ws))
    targets.append(LIFESPAN.get(str(options.get("lifespan", "auto"))))
    loop = str(options.get("loop", "auto"))
    targets.append(LOOP_FACTORIES.get(loop, loop))
    if loop == "auto":
        targets.extend(["uvloop:new_event_loop", "uvicorn.loops.uvloop:uvloop_loop_factory"])
    return [target.partition(":")[0] for target in targets if target]


def preload_uvicorn(settings: dict[str, Any]) -> int:
    """uvicorn and its protocol, loop and lifespan modules, and corral's own worker modules."""
    count = 0
    for name in ["uvicorn", *uvicorn_modules(dict(settings.get("uvicorn", {})))]:
        count += import_quietly(name)
    return count
