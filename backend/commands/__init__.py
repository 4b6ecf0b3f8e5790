"""One module per command of ``python -m backend``: arguments in, a library call, outputs and
events out. :mod:`backend.cli` is the table of them; no library module imports this package."""
