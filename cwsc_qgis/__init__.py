"""CWSC toolkit: a QGIS Processing provider for catchment water storage capacity maps.

The plugin imports only ``qgis``, ``qgis.PyQt`` and the standard library. All numeric
work runs in a separate backend process (``python -m cwsc <command>``); see
``runner.py``.
"""


def classFactory(iface):  # noqa: N802 - QGIS entry point
    from .plugin import CwscPlugin

    return CwscPlugin(iface)
