"""The errors of the CWSC package.

Every error a user can fix is a :class:`BadInput`: its message names the file, band or
parameter and what is wrong. The subclasses say which kind of input it was, and also derive
from the builtin exception that fits, so ``except ValueError`` or ``except OSError`` in a
caller's script catches them as it would expect. Only the runtime
(:mod:`cwsc.runtime.protocol`) turns them into the plugin's events and exit codes.
"""

from __future__ import annotations


class CwscError(Exception):
    """The root of every error this package raises on purpose."""


class BadInput(CwscError):
    """Input the user can fix: the message names the file, band or parameter (exit code 2)."""


class InputFileError(BadInput, ValueError):
    """An input file that is missing, unreadable, damaged, or holds what cannot be used."""


class GridMismatch(BadInput, ValueError):
    """Rasters whose grids, CRSs or extents do not fit together."""


class PeriodError(BadInput, ValueError):
    """Months and periods: undated bands, gaps, calendars, too few months, no common months."""


class UnitsError(BadInput, ValueError):
    """Units that are unknown or cannot be converted to mm/month."""


class ParameterError(BadInput, ValueError):
    """A parameter value out of its range or not among its choices."""


class OutputRefused(BadInput, OSError):
    """An output that cannot be written: same file as an input, no folder, no space, no
    permission. Nothing was written or replaced."""


class ClusterError(BadInput, ConnectionError):
    """The Dask cluster: no scheduler, no workers, or workers that lack this package."""


class Cancelled(BaseException):
    """The run was stopped (SIGTERM / SIGINT from the plugin's Cancel).

    A BaseException, like KeyboardInterrupt: an ``except Exception`` that guards a fallback
    (a compiler failure, a GPU kernel) must never swallow a stop."""
