"""Provider settings (Processing > Options > Providers > CWSC) and where things live.

Settings are registered through ``processing.core.ProcessingConfig`` when the provider
loads; they are stored in ``QgsSettings`` under ``Processing/Configuration/<name>``, so
they can also be read when the Processing plugin's Python classes are not around.
"""

import os

from qgis.core import QgsSettings

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

PROVIDER_GROUP = "CWSC"
BACKEND_PYTHON = "CWSC_BACKEND_PYTHON"
DEFAULT_DEVICE = "CWSC_DEFAULT_DEVICE"
DEVICES = ["auto", "cpu", "cuda"]
DASK_SCHEDULER = "CWSC_DASK_SCHEDULER"
CWSC_SCALE_MAX = "CWSC_SCALE_MAX"
#: The top of the one colour scale of every CWSC layer (mm): the demo region's true CWSC
#: reaches 775 mm, and most catchments' storage capacity lies below it.
DEFAULT_SCALE_MAX = 800.0
ENV_BACKEND_PYTHON = "CWSC_BACKEND_PYTHON"
#: written by scripts/deploy.sh: the absolute path of the interpreter made by ``make setup``
RECORDED_PYTHON_FILE = os.path.join(PLUGIN_DIR, "backend_python.txt")


def resources_dir():
    """``resources/`` inside the plugin (zip install) or beside it (repository checkout)."""
    for candidate in (
        os.path.join(PLUGIN_DIR, "resources"),
        os.path.join(os.path.dirname(PLUGIN_DIR), "resources"),
    ):
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(PLUGIN_DIR, "resources")


def resource_path(*parts):
    return os.path.join(resources_dir(), *parts)


def icon_path():
    return resource_path("icon.svg")


def backend_root():
    """The folder that holds the ``cwsc`` package: ``cwsc_qgis/lib`` in the plugin zip
    (a folder of its own, so nothing of the plugin shadows a module in the backend's
    process), or the repository root in a checkout."""
    for candidate in (os.path.join(PLUGIN_DIR, "lib"), os.path.dirname(PLUGIN_DIR)):
        if os.path.isfile(os.path.join(candidate, "cwsc", "__main__.py")):
            return candidate
    return None


def _processing_config():
    try:
        from processing.core.ProcessingConfig import ProcessingConfig  # noqa: PLC0415
    except ImportError:  # pragma: no cover - Processing plugin missing
        return None
    return ProcessingConfig


def register_settings(icon=None):
    cfg = _processing_config()
    if cfg is None:
        return
    from processing.core.ProcessingConfig import Setting  # noqa: PLC0415

    if icon is not None:
        cfg.settingIcons[PROVIDER_GROUP] = icon
    cfg.addSetting(
        Setting(
            PROVIDER_GROUP,
            BACKEND_PYTHON,
            "Backend Python interpreter (empty: the one Set up the backend made, or $CWSC_BACKEND_PYTHON)",
            "",
            valuetype=Setting.FILE,
        )
    )
    cfg.addSetting(
        Setting(
            PROVIDER_GROUP,
            DEFAULT_DEVICE,
            "Default device when an algorithm's DEVICE is left at 'auto'",
            DEVICES[0],
            valuetype=Setting.SELECTION,
            options=list(DEVICES),
        )
    )
    cfg.addSetting(
        Setting(
            PROVIDER_GROUP,
            CWSC_SCALE_MAX,
            "Top of the colour scale of every CWSC layer (mm; the same colour is the same CWSC in "
            "labels, masked labels, per-model sc and predicted maps)",
            DEFAULT_SCALE_MAX,
            valuetype=Setting.FLOAT,
        )
    )
    cfg.addSetting(
        Setting(
            PROVIDER_GROUP,
            DASK_SCHEDULER,
            "Dask scheduler for calibration (e.g. tcp://host:8786; empty: this computer's cores)",
            "",
        )
    )
    cfg.readSettings()


def unregister_settings():
    cfg = _processing_config()
    if cfg is None:
        return
    for name in (BACKEND_PYTHON, DEFAULT_DEVICE, DASK_SCHEDULER, CWSC_SCALE_MAX):
        if name in cfg.settings:
            cfg.removeSetting(name)


def _setting(name):
    cfg = _processing_config()
    if cfg is not None and name in cfg.settings:
        return cfg.getSetting(name, readable=True)
    return QgsSettings().value("Processing/Configuration/" + name, None)


def setting_backend_python():
    value = _setting(BACKEND_PYTHON)
    return str(value).strip() if value else ""


def setting_default_device():
    value = _setting(DEFAULT_DEVICE)
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        index = int(value)
        return DEVICES[index] if 0 <= index < len(DEVICES) else "auto"
    value = str(value or "auto").strip().lower()
    return value if value in DEVICES else "auto"


def setting_dask_scheduler():
    value = _setting(DASK_SCHEDULER)
    return str(value).strip() if value else ""


def setting_scale_max():
    """The top of the CWSC colour scale in mm (the default when unset or not a positive number)."""
    try:
        value = float(_setting(CWSC_SCALE_MAX))
    except (TypeError, ValueError):
        return DEFAULT_SCALE_MAX
    return value if value > 0 else DEFAULT_SCALE_MAX
