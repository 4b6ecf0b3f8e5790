import os
import sys

from backend import protocol
from backend.cli import main

code = main()
if code == protocol.EXIT_CANCELLED:
    # Everything the run made is already removed (its contexts unwound before the event);
    # skip the interpreter's teardown (a second with torch loaded) so Cancel is quick.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
