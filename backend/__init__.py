"""CWSC backend: the numeric half of the CWSC toolkit.

Runs in its own Python process (``python -m backend <command>``), speaks JSON lines on
stdout (see :mod:`backend.protocol`) and never imports QGIS.
"""

__version__ = "0.1.0"
