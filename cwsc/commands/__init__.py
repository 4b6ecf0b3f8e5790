"""One module per command of ``python -m cwsc``: arguments in, a library call, outputs and
events out. :mod:`cwsc.cli` is the table of them; no library module imports this package."""
