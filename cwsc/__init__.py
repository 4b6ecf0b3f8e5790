"""CWSC: catchment water storage capacity from monthly water balance models and deep learning.

The numeric half of the CWSC toolkit. Use it as a library (arrays in and out, see
:mod:`cwsc.hydro.calibration`, :mod:`cwsc.ml`), from the command line (``cwsc <command>`` or
``python -m cwsc <command>``), or through the QGIS plugin, which runs the command line in its
own process and reads its JSON-lines events (:mod:`cwsc.runtime.protocol`). It never imports
QGIS. As a library it prints nothing: it reports through :mod:`logging` (configure logging to
see it) and raises the classes of :mod:`cwsc.errors`.
"""

import logging

__version__ = "0.2.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
