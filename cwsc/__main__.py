"""``python -m cwsc <command> ...``: the same as the ``cwsc`` console command."""

from cwsc.cli import run

run()
