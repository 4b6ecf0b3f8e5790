"""cwsc:setup - build the backend's Python environment from inside QGIS."""

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)

from .. import installer
from .base import CwscAlgorithm, tr

TORCH_CHOICES = ["auto", "cpu", "cuda"]


class SetupAlgorithm(CwscAlgorithm):
    ALG_NAME = "setup"
    DISPLAY_NAME = "Set up the backend"
    GROUP = "tools"
    COMMAND = "info"
    TAGS = ("install", "environment", "PyTorch", "CUDA", "set up")
    DETAILS = """
<p><b>Run this once after installing the plugin.</b> Builds the Python environment that runs
the CWSC backend (PyTorch, numpy, rasterio, xarray, Dask ...) and makes the CWSC algorithms
use it: no terminal needed. It makes a virtual environment of its own (QGIS's own Python is
never changed), installs the backend's packages with pip from the list shipped in the plugin
(pip's output appears in the log; a few minutes, mostly the download of PyTorch, about 200 MB
for the CPU build and 2-3 GB for the CUDA build), runs <i>Backend information</i> in it and
records it as the provider setting <i>Backend Python interpreter</i>.</p>
<p><b>Parameters</b>: <b>Environment folder</b> (default: cwsc/backend in your QGIS
profile folder; a new or empty folder, or an earlier environment, which is updated);
<b>Python to build it with</b> (default: found on the computer, Python 3.10 or newer with its
venv module; on Windows and macOS install one from python.org if none is found, on Debian and
Ubuntu <i>apt install python3-venv</i>); <b>PyTorch build</b>: auto (the CUDA build when
nvidia-smi reports an NVIDIA GPU, else the CPU build), cpu or cuda.</p>
<p><b>Outputs</b>: <b>INTERPRETER</b>, the environment's interpreter, and <b>INFO</b>, what the
backend reports (versions, devices). Cancel stops pip and removes a folder this run made.
To use an environment you built yourself instead, set <i>Processing &gt; Options &gt;
Providers &gt; CWSC &gt; Backend Python interpreter</i> to its python.</p>
<p>Next step: <i>Prepare forcing & predictors</i>, or <i>Calibrate models per cell</i>.</p>
"""
    HELP = """
<p>Builds the backend's Python environment from inside QGIS, once after installing the
plugin: a virtual environment in your QGIS profile, filled by pip with the exact versions the
plugin was tested with (PyTorch: the CPU build, or CUDA when an NVIDIA GPU is found), then
checked and recorded.</p>
<p><b>Inputs</b>: optionally <b>FOLDER</b>, <b>PYTHON</b> (3.10 or newer) and <b>TORCH</b>.</p>
<p><b>Outputs</b>: <b>INTERPRETER</b> (the environment's interpreter), <b>INFO</b>.</p>
<p>Takes a few minutes (PyTorch is a large download); Cancel removes the half-made folder.</p>
"""
    REFS = ()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile(
                "FOLDER",
                tr("Environment folder (empty: in the profile)"),
                behavior=QgsProcessingParameterFile.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "PYTHON",
                tr("Python to build it with (3.10+)"),
                optional=True,
                # "*": an interpreter has no extension (QGIS's default filter, *.*, wants one)
                fileFilter="All files (*)",
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "TORCH",
                tr("PyTorch build (auto: CUDA with an NVIDIA GPU)"),
                options=TORCH_CHOICES,
                defaultValue=0,
            )
        )
        # INTERPRETER, not PYTHON: an output named as an input is listed under the input's label
        self.addOutput(QgsProcessingOutputString("INTERPRETER", tr("Backend interpreter")))
        self.addOutput(QgsProcessingOutputString("INFO", tr("Backend information")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.parameterAsFile(parameters, "FOLDER", context) or installer.default_folder()
        folder = os.path.abspath(os.path.expanduser(folder))
        python, version = installer.find_python(self.parameterAsFile(parameters, "PYTHON", context) or None)
        build = installer.torch_build(TORCH_CHOICES[self.parameterAsEnum(parameters, "TORCH", context)])
        feedback.pushInfo(
            tr("building with Python {} at {}; PyTorch {} build").format(
                ".".join(map(str, version)), python, build
            )
        )
        try:
            target, seconds = installer.build(folder, python, build, feedback)
        except installer.SetupCancelled:
            feedback.pushInfo(tr("cancelled: the set-up was stopped"))
            return {}
        info = installer.backend_info(target, feedback)
        versions = info.get("versions") or {}
        devices = ", ".join(d.get("name", "?") for d in info.get("devices") or [])
        summary = "backend {}, torch {}, numpy {}, rasterio {}; devices: {}".format(
            versions.get("backend"),
            versions.get("torch"),
            versions.get("numpy"),
            versions.get("rasterio"),
            devices or "cpu",
        )
        if build == "cuda" and not (info.get("cuda") or {}).get("available"):
            feedback.pushWarning(
                tr(
                    "the CUDA build was installed but torch sees no CUDA device: "
                    "check the NVIDIA driver (nvidia-smi)"
                )
            )
        installer.record(target)
        feedback.setProgress(100)
        feedback.pushInfo(tr("set up in {:.0f} s: {}").format(seconds, summary))
        feedback.pushInfo(tr("the CWSC algorithms now use {}").format(target))
        return {"INTERPRETER": target, "INFO": summary}

    def build(self, parameters, context, feedback):  # pragma: no cover - not a backend call
        raise QgsProcessingException("cwsc:setup builds the backend; it does not call it")
