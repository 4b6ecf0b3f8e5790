"""Progress of long library calls, reported through :mod:`logging`.

A library function reports how far it is with :func:`progress`: a DEBUG record on its
module's logger that carries the fraction. Nothing is printed unless logging is configured
(the package's logger has a :class:`logging.NullHandler`); the command-line runtime
(:mod:`cwsc.runtime.protocol`) turns these records into the plugin's progress events.
"""

from __future__ import annotations

import logging
from typing import Any

#: The attribute of a log record that carries a progress fraction in [0, 1].
FRACTION = "cwsc_progress"
#: The attribute that carries extra fields of a progress report (losses, counts).
EXTRA = "cwsc_progress_extra"


def progress(logger: logging.Logger, fraction: float, stage: str, **extra: Any) -> None:
    """Report that the work of ``stage`` is ``fraction`` (0..1) done, on ``logger``."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(stage, extra={FRACTION: float(fraction), EXTRA: extra})
