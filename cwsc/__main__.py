"""``python -m cwsc <command> ...``: the same as the ``cwsc`` console command."""

try:
    from cwsc.cli import run
except KeyboardInterrupt:
    # Ctrl-C while Python loads the command line: one line, not a traceback of the import.
    import sys

    sys.stderr.write("cwsc: stopped (Ctrl-C) before the run began; nothing was written.\n")
    raise SystemExit(3) from None

run()
