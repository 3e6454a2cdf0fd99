"""An app whose import fails: it needs a module that does not exist."""

import corral_missing_dependency  # noqa: F401

app = None
