"""The APP argument to an app object: uvicorn's module:attribute, or gunicorn's module:factory(literals).

Called by loading.load_app, which the workers and `corral --check-config` both run. The master's
own reading of APP (src/config/app-target.ts) is checked against parse_call by test/unit/config/app-target.test.ts.
"""

from __future__ import annotations

import ast
from typing import Any


class AppCallError(Exception):
    """The call form of APP cannot be evaluated (the master's check lets only literal calls through)."""


def parse_call(expression: str) -> tuple[str, list[Any], dict[str, Any]] | None:
    """gunicorn's reading of the part after the colon: None for a plain name, else the call's
    function name and its literal arguments. Anything else raises AppCallError."""
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise AppCallError(f"cannot parse {expression!r}: {exc.msg}") from None
    if isinstance(node, ast.Name):
        return None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise AppCallError(f"{expression!r} is neither an attribute nor a call of a plain name")
    try:
        args = [ast.literal_eval(arg) for arg in node.args]
        kwargs = {str(keyword.arg): ast.literal_eval(keyword.value) for keyword in node.keywords if keyword.arg is not None}
    except (ValueError, TypeError, SyntaxError):
        raise AppCallError(f"the arguments of {expression!r} are not all literals") from None
    if any(keyword.arg is None for keyword in node.keywords):
        raise AppCallError(f"the arguments of {expression!r} are not all literals")
    return node.func.id, args, kwargs


def load_app_target(target: str, factory: bool) -> Any:
    """Imports APP: `module:attribute` as uvicorn does (and calls it with --factory), or
    `module:create_app(…)`, called with its literal arguments as gunicorn does."""
    from uvicorn.importer import import_from_string

    module, _, expression = target.partition(":")
    call = None if all(part.isidentifier() for part in expression.split(".")) else parse_call(expression)
    if call is None:
        app = import_from_string(target)
        return app() if factory else app
    name, args, kwargs = call
    function = import_from_string(f"{module}:{name}")
    app = function(*args, **kwargs)
    if app is None:
        raise AppCallError(f"{target} returned None instead of an app")
    return app
