"""Reads a gunicorn-style config file and prints its settings as one JSON object (standard library only).

Usage: python corral_config_dump.py PATH_OR_python:MODULE [REQUEST]
       python corral_config_dump.py "" REQUEST

The file runs as gunicorn runs it: as a module named __config__ with its own directory first on
sys.path. Its own prints go to stderr, so stdout carries only the JSON. Functions are reported
by name (they are server hooks, or helpers); values JSON cannot hold are reported with their repr.

REQUEST (JSON) also checks a worker class (corral_runtime/worker_class.py) in this same run, so a
custom class costs no second interpreter: {"exact": {name, paths, env, config_file}} checks that one;
{"speculate": {"upper": {...}, "known": [...]}} works the request out from the file's values and the
ones above the file (command line, environment), and the master uses the answer only when its own
request comes out the same.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
import types
from typing import Any

from corral_runtime.config_module import load_config_module
from corral_runtime.worker_class import class_path, inspect_worker_class


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
        if name == "worker_class" and inspect.isclass(value):
            # gunicorn takes the class itself; a class defined in the file is __config__.Name.
            settings[name] = class_path(value)
            continue
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


def speculative_request(target: str, settings: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """The worker-class request the master will make, when the values above the file and in it settle it."""
    upper: dict[str, Any] = hint.get("upper", {})

    def pick(name: str) -> Any:
        return upper[name] if upper.get(name) is not None else settings.get(name)

    name = pick("worker_class")
    if not isinstance(name, str) or "." not in name or name in hint.get("known", []) or name.startswith(("egg:", "gunicorn.workers.")):
        return None
    # The file's own chdir applies after it is read: the master then asks with an exact request.
    if upper.get("chdir") is None and settings.get("chdir") is not None:
        return None
    pythonpath = pick("pythonpath")
    if isinstance(pythonpath, list):
        pythonpath = ",".join(str(item) for item in pythonpath)
    app_dir = pick("app_dir")
    raw_env = pick("raw_env")
    if isinstance(raw_env, str):
        raw_env = [raw_env]
    if not isinstance(pythonpath, (str, type(None))) or not isinstance(app_dir, (str, type(None))) or not isinstance(raw_env, (list, type(None))):
        return None
    paths: list[str] = [os.path.abspath(part.strip()) for part in (pythonpath or "").split(",") if part.strip()]
    paths += [os.path.abspath(app_dir or "."), os.getcwd()]
    if target and not target.startswith("python:"):
        paths.append(os.path.dirname(os.path.abspath(target)))
    env: dict[str, str] = {}
    for item in raw_env or []:
        key, equals, value = str(item).partition("=")
        if not equals or not key:
            return None
        env[key] = value
    unique = list(dict.fromkeys(paths))
    config_file = (target if target.startswith("python:") else os.path.abspath(target)) if target else None
    return {"name": name, "paths": unique, "env": env, "config_file": config_file}


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else ""
    request_hint: dict[str, Any] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        try:
            namespace = vars(load_config_module(target, quiet=False)) if target else {}
        except BaseException as exc:  # noqa: BLE001 - any failure is reported as the config file's
            lines = traceback.format_exception_only(type(exc), exc)
            print(json.dumps({"error": "".join(lines).strip(), "traceback": traceback.format_exc()}), file=real_stdout)
            return 1
        answer = describe(namespace)
        request = request_hint.get("exact")
        if request is None and "speculate" in request_hint:
            request = speculative_request(target, answer["settings"], request_hint["speculate"])
        if request is not None:
            answer["worker_class"] = {"request": request, "result": inspect_worker_class(request)}
    finally:
        sys.stdout = real_stdout
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
