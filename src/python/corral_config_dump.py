"""Reads a gunicorn-style config file and prints its settings as one JSON object (standard library only).

Usage: python corral_config_dump.py PATH_OR_python:MODULE

The file runs as gunicorn runs it: as a module named __config__ with its own directory first on
sys.path. Its own prints go to stderr, so stdout carries only the JSON. Functions are reported
by name (they are server hooks, or helpers); values JSON cannot hold are reported with their repr.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
import types
from typing import Any


def load(target: str) -> dict[str, Any]:
    if target.startswith("python:"):
        return vars(importlib.import_module(target[len("python:"):]))
    path = os.path.abspath(target)
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("__config__", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__config__"] = module
    spec.loader.exec_module(module)
    return vars(module)


def plain(value: Any) -> Any:
    """Sets become lists; anything else JSON cannot hold is reported as unreadable, not guessed at."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(type(value).__name__)


def describe(namespace: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    functions: dict[str, dict[str, Any]] = {}
    unreadable: dict[str, str] = {}
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, types.ModuleType) or inspect.isclass(value):
            continue
        if callable(value):
            try:
                arity = len(inspect.signature(value).parameters)
            except (TypeError, ValueError):
                arity = -1
            functions[name] = {"arity": arity}
            continue
        try:
            settings[name] = json.loads(json.dumps(value, default=plain))
        except (TypeError, ValueError):
            unreadable[name] = repr(value)
    return {"settings": settings, "functions": functions, "unreadable": unreadable}


def main() -> int:
    target = sys.argv[1]
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        namespace = load(target)
    except BaseException as exc:  # noqa: BLE001 - any failure is reported as the config file's
        lines = traceback.format_exception_only(type(exc), exc)
        print(json.dumps({"error": "".join(lines).strip(), "traceback": traceback.format_exc()}), file=real_stdout)
        return 1
    finally:
        sys.stdout = real_stdout
    print(json.dumps(describe(namespace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
