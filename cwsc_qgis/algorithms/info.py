"""cwsc:info - the backend interpreter, package versions and devices."""

import json
import os

from qgis.core import (
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)

from .. import runner
from .base import CwscAlgorithm, tr


class InfoAlgorithm(CwscAlgorithm):
    ALG_NAME = "info"
    DISPLAY_NAME = "Backend information"
    GROUP = "tools"
    COMMAND = "info"
    TAGS = ("version", "CUDA", "GPU", "diagnostics")
    DETAILS = """
<p>Checks the set-up: which Python environment runs the CWSC backend (the one <i>Set up the
backend</i> made, or the one chosen in Processing &gt; Options &gt; Providers &gt; CWSC), the
versions of the backend, torch, numpy, rasterio and xarray, and the devices: the CPU and,
when present, each CUDA device with its name and memory.</p>
<p><b>Input</b>: <b>BACKEND_PYTHON</b> (optional): another interpreter to check, e.g. before
choosing it in the provider's settings; empty: the one CWSC runs.</p>
<p><b>Outputs</b>: <b>INTERPRETER</b>, <b>BACKEND_VERSION</b>, <b>TORCH_VERSION</b>,
<b>CUDA_AVAILABLE</b>, <b>DEVICES</b> (text) and <b>INFO_JSON</b> (everything, as JSON).</p>
<p>When the backend is missing or broken, run <i>Set up the backend</i> (in this group): it
builds the environment from inside QGIS and records it.</p>
"""
    HELP = """
<p>Checks the set-up: which Python environment runs the CWSC backend, the versions of the
backend and its packages, and the devices (the CPU and each CUDA device).</p>
<p><b>Input</b>: <b>BACKEND_PYTHON</b> (optional): another interpreter to check; empty: the one CWSC
runs.</p>
<p><b>Outputs</b>: <b>INTERPRETER</b>, <b>BACKEND_VERSION</b>, <b>TORCH_VERSION</b>,
<b>CUDA_AVAILABLE</b>, <b>DEVICES</b>, <b>INFO_JSON</b>.</p>
<p>When the backend is missing or broken, run <i>Set up the backend</i>.</p>
"""
    REFS = ()

    def initAlgorithm(self, config=None):  # noqa: N802
        # A visible parameter also makes the Toolbox open a dialog (with the results and the
        # log) instead of running in the message bar, whose progress bar QGIS 3.22 feeds
        # with floats (a TypeError under Python 3.10+).
        self.addParameter(
            QgsProcessingParameterFile(
                "BACKEND_PYTHON",
                tr("Python to check (empty: the one in use)"),
                optional=True,
                # "*": an interpreter has no extension (QGIS's default filter, *.*, wants one)
                fileFilter="All files (*)",
            )
        )
        self.addOutput(QgsProcessingOutputString("INTERPRETER", tr("Backend interpreter")))
        self.addOutput(QgsProcessingOutputString("BACKEND_VERSION", tr("Backend version")))
        self.addOutput(QgsProcessingOutputString("TORCH_VERSION", tr("torch version")))
        self.addOutput(QgsProcessingOutputBoolean("CUDA_AVAILABLE", tr("CUDA available")))
        self.addOutput(QgsProcessingOutputString("DEVICES", tr("Devices")))
        self.addOutput(QgsProcessingOutputString("INFO_JSON", tr("Everything, as JSON")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        python = (self.parameterAsFile(parameters, "BACKEND_PYTHON", context) or "").strip()
        python = os.path.abspath(os.path.expanduser(python)) if python else None
        run = runner.BackendRun("info", [], feedback=feedback, python=python)
        result = run.run()
        python = run.python
        feedback.pushInfo(tr("Backend interpreter: {} (from {})").format(python, run.source))
        info = result.get("metrics") or {}
        versions = info.get("versions") or {}
        devices = []
        for d in info.get("devices") or []:
            text = "{} ({})".format(d.get("name"), d.get("model", d.get("kind")))
            if d.get("memory_gib") is not None:
                text += ", {} GiB".format(d["memory_gib"])
            devices.append(text)
        for name, version in sorted(versions.items()):
            if version is not None:  # a package the backend does not need is not listed
                feedback.pushInfo("{}: {}".format(name, version))
        return {
            "INTERPRETER": info.get("interpreter", python),
            "BACKEND_VERSION": versions.get("backend"),
            "TORCH_VERSION": versions.get("torch"),
            "CUDA_AVAILABLE": bool((info.get("cuda") or {}).get("available")),
            "DEVICES": "; ".join(devices),
            "INFO_JSON": json.dumps(info),
        }
