"""corral's worker runtime: the code behind src/python/corral_worker.py, one module per concern.

Every module lives in this package so none can shadow a module of the user's app, whose directory
goes first on sys.path. Standard library and uvicorn only.
"""
