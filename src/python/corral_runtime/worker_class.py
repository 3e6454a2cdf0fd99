"""gunicorn worker classes: a UvicornWorker subclass named by -k or worker_class, and its CONFIG_KWARGS.

corral never instantiates the class: it runs uvicorn itself. It imports the class once at start, in a
one-shot Python (corral_config_dump.py), to check it and read CONFIG_KWARGS for the master; each
worker imports it again (load_in_worker), as gunicorn's master imports it before forking, so the
module's own start-up code runs and values JSON cannot carry reach uvicorn. The check compares the
class's bases by module and name, so it needs neither uvicorn.workers nor gunicorn; a class whose
module imports them needs gunicorn installed, as it would under gunicorn.

Imports nothing of corral's runtime, so the one-shot reader can use it alone.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import sys
import textwrap
import traceback
from typing import Any

from .config_module import load_config_module

# The UvicornWorker classes, by the module that defines them and their name, with the name users write.
UVICORN_WORKER_BASES: dict[tuple[str, str], str] = {
    (module, name): f"{public}.{name}"
    for module, public in (
        ("uvicorn.workers", "uvicorn.workers"),
        ("uvicorn_worker", "uvicorn_worker"),
        ("uvicorn_worker._workers", "uvicorn_worker"),
        ("uvicorn_worker.workers", "uvicorn_worker"),
    )
    for name in ("UvicornWorker", "UvicornH11Worker")
}

# Class attributes that are not behaviour.
NOT_METHODS = {
    "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__", "__firstlineno__",
    "__static_attributes__", "__orig_bases__", "__parameters__", "__classcell__", "__slots__", "CONFIG_KWARGS",
}


# corral's frames and the import machinery's, left out of an import failure's traceback.
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
IMPORTLIB = os.sep + os.path.join("importlib", "__init__.py")


def user_traceback(exc: BaseException) -> str:
    details = traceback.TracebackException.from_exception(exc)
    details.stack = traceback.StackSummary.from_list(
        [frame for frame in details.stack if not frame.filename.startswith(("<frozen", RUNTIME_DIR)) and not frame.filename.endswith(IMPORTLIB)]
    )
    # With no frame of the user's left, the error line alone says it all.
    return "".join(details.format()) if details.stack else ""


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def add_paths(paths: list[str]) -> None:
    """Puts the directories first on sys.path, in their order, as gunicorn puts --pythonpath and --chdir."""
    for directory in reversed(paths):
        if directory not in sys.path:
            sys.path.insert(0, directory)


def load_worker_class(name: str, config_file: str | None) -> Any:
    """Imports `module.Class` as gunicorn's load_class does; `__config__.Class` is a class defined in the config file."""
    module_name, _, class_name = name.rpartition(".")
    if module_name == "__config__":
        if not config_file:
            raise ImportError(f"{name} names a class of the config file, but no config file was read")
        module = load_config_module(config_file, quiet=True)
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {class_name!r}") from None


def only_calls_super(function: Any) -> bool:
    """An override whose body only calls the same method of super() changes nothing corral runs."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)) or definition.decorator_list:
        return False
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], (ast.Expr, ast.Return)):
        return False
    call = body[0].value
    if isinstance(call, ast.Await):
        call = call.value
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == definition.name
        and isinstance(call.func.value, ast.Call)
        and isinstance(call.func.value.func, ast.Name)
        and call.func.value.func.id == "super"
    )


def overridden_methods(own: list[type], inherited: list[type]) -> list[str]:
    """Methods of UvicornWorker or gunicorn's Worker that the user's classes redefine."""
    base_names = {name for cls in inherited for name in vars(cls)}
    names: set[str] = set()
    for cls in own:
        for name, attribute in vars(cls).items():
            if name in NOT_METHODS or name not in base_names:
                continue
            function = attribute.__func__ if isinstance(attribute, (staticmethod, classmethod)) else attribute
            if not (callable(function) or isinstance(attribute, property)):
                continue
            if inspect.isfunction(function) and only_calls_super(function):
                continue
            names.add(name)
    return sorted(names)


def config_params() -> list[str]:
    from uvicorn.config import Config

    return [name for name in inspect.signature(Config.__init__).parameters if name != "self"]


def describe_worker_class(value: Any) -> dict[str, Any]:
    """What the master needs to know of a worker class, as JSON: its UvicornWorker base and its own CONFIG_KWARGS."""
    if not inspect.isclass(value):
        return {"refused": "not-a-class", "type": type(value).__name__}
    mro = list(value.__mro__)
    index = next((i for i, cls in enumerate(mro) if (cls.__module__, cls.__qualname__) in UVICORN_WORKER_BASES), None)
    if index is None:
        return {"refused": "not-uvicorn", "bases": [class_path(cls) for cls in mro[1:] if cls is not object]}
    base = UVICORN_WORKER_BASES[(mro[index].__module__, mro[index].__qualname__)]
    own = mro[:index]
    overrides = overridden_methods(own, [cls for cls in mro[index:] if cls is not object])
    if overrides:
        return {"refused": "overrides", "base": base, "methods": overrides}
    result: dict[str, Any] = {"base": base, "h11": base.endswith("H11Worker")}
    if not any("CONFIG_KWARGS" in vars(cls) for cls in own):
        return result
    kwargs = getattr(value, "CONFIG_KWARGS")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        return {"refused": "bad-config-kwargs", "repr": repr(kwargs)[:200]}
    values: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for key, item in kwargs.items():
        try:
            values[key] = json.loads(json.dumps(item, allow_nan=False))
        except (TypeError, ValueError):
            unreadable[key] = repr(item)
    result.update(config_kwargs=values, unreadable=unreadable, config_params=config_params())
    return result


def inspect_worker_class(request: dict[str, Any]) -> dict[str, Any]:
    """The one-shot check: imports the class with the workers' path and -e variables, and describes it."""
    os.environ.update(request.get("env", {}))
    add_paths(list(request.get("paths", [])))
    try:
        value = load_worker_class(str(request["name"]), request.get("config_file"))
    except BaseException as exc:  # noqa: BLE001 - the class's module is user code
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        return {
            "import_error": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
            "traceback": user_traceback(exc),
            "missing_gunicorn": bool(missing) and str(missing).split(".")[0] == "gunicorn",
        }
    try:
        return describe_worker_class(value)
    except Exception as exc:  # noqa: BLE001 - reading a user class's attributes runs user code
        return {"import_error": f"{type(exc).__name__}: {exc}", "traceback": user_traceback(exc), "missing_gunicorn": False}


def load_in_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Imports the worker class in a worker and returns the CONFIG_KWARGS values the master left to it."""
    add_paths(list(spec.get("paths", [])))
    cls = load_worker_class(str(spec["name"]), spec.get("config_file"))
    kwargs = getattr(cls, "CONFIG_KWARGS", None) or {}
    return {key: kwargs[key] for key in spec.get("passthrough", []) if key in kwargs}
