"""What a person at a terminal sees of a run: the same events as the JSON-lines protocol
(:mod:`cwsc.runtime.protocol`), written for reading.

- ``progress``: one progress bar on stderr (tqdm) with the stage (which names the cells done)
  and the time left; where stderr is not a terminal (a log file), a line per stage instead.
- ``log``: info lines on stderr; warnings as ``warning: ...`` lines, also with ``--quiet``.
- ``result``: a closing summary on stdout: the files written and the run's figures.
- ``error``: one line on stderr, naming the option the user typed (``--precip``) where the
  backend's message names the plugin's parameter (``PRECIPITATION``).

``--quiet`` keeps warnings and errors only. The plugin never sees any of this: it asks for
JSON lines (``--json``), which :func:`cwsc.runtime.protocol.emit` writes unchanged.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable, TextIO

#: The plugin's parameter names as the backend's messages write them: ``RUNOFF``,
#: ``MODEL_KGE_MARGIN``, ``PRECIPITATION_START``.
_NAME = re.compile(r"(?<![\w-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)(?![\w-])(:?)")


def rename_parameters(message: str, option: Callable[[str], str | None], ambiguous: set[str]) -> str:
    """``message`` with every parameter name the command has replaced by its option
    (``PRECIPITATION: ...`` -> ``--precip: ...``). ``option(name)`` is the option of a name, or
    None when the command has none; names that are also words of the trade (``PET``, ``KGE``)
    are replaced only where they lead a clause (``PET: ...``)."""

    def replace(match: re.Match) -> str:
        name, colon = match.group(1), match.group(2)
        flag = option(name)
        if flag is None or (name in ambiguous and not colon):
            return match.group(0)
        return flag + colon

    return _NAME.sub(replace, message)


def _figure(value: Any) -> str:
    """A metric as a person reads it: 4 significant digits, thousands separated."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "-" if value != value else f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_figure(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_figure(v) for v in value[:8])
        return shown + (f", ... ({len(value)} in all)" if len(value) > 8 else "")
    return str(value)


class Console:
    """Renders events for a person. ``command`` names the run in its last line; ``option`` maps
    a parameter name to the option the user typed (None: not an option of this command)."""

    def __init__(
        self,
        command: str,
        quiet: bool = False,
        option: Callable[[str], str | None] = lambda name: None,  # noqa: ARG005
        ambiguous: set[str] | None = None,
        err: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.command = command
        self.quiet = quiet
        self.option = option
        self.ambiguous = ambiguous or set()
        self.err = err if err is not None else sys.stderr
        self.out = out if out is not None else sys.stdout
        self.started = time.monotonic()
        self.bar = None
        self.stage_kind: str | None = None
        try:
            self.terminal = self.err.isatty()
        except (AttributeError, ValueError):
            self.terminal = False

    # -- the events ---------------------------------------------------------------------------
    def event(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "progress":
            extra = {k: v for k, v in fields.items() if k not in ("fraction", "stage")}
            self.progress(float(fields.get("fraction", 0.0)), str(fields.get("stage", "")), extra)
        elif kind == "log":
            self.log(str(fields.get("message", "")), str(fields.get("level", "info")))
        elif kind == "result":
            self.result(fields.get("outputs") or {}, fields.get("metrics") or {})
        elif kind == "error":
            self.error(str(fields.get("kind", "internal")), str(fields.get("message", "")))

    def progress(self, fraction: float, stage: str, extra: dict[str, Any]) -> None:
        if self.quiet:
            return
        # "calibrating: 1,024 of 9,000 cells" and "calibrating: 2,048 of 9,000 cells" are one
        # stage; a line per stage where there is no bar to redraw.
        kind = re.sub(r"[\d.,]+", "#", stage)
        if not self.terminal:
            if kind != self.stage_kind or extra:
                self.stage_kind = kind
                details = ", ".join(f"{k}={_figure(v)}" for k, v in extra.items())
                self._line(f"[{fraction:4.0%}] {stage}" + (f" ({details})" if details else ""))
            return
        bar = self._bar()
        bar.set_description_str(stage, refresh=False)
        if extra:
            bar.set_postfix_str(", ".join(f"{k}={_figure(v)}" for k, v in extra.items()), refresh=False)
        done = round(100.0 * min(max(fraction, 0.0), 1.0), 1)
        bar.update(done - bar.n)
        if kind != self.stage_kind:  # a new stage shows at once, whatever tqdm's interval
            self.stage_kind = kind
            bar.refresh()

    def log(self, message: str, level: str) -> None:
        if level in ("warning", "error"):
            self._line(f"warning: {message}")
        elif not self.quiet and level != "debug":
            self._line(message)

    def result(self, outputs: dict[str, Any], metrics: dict[str, Any]) -> None:
        self.close()
        if self.quiet:
            return
        seconds = time.monotonic() - self.started
        lines = [f"cwsc {self.command}: done in {_duration(seconds)}."]
        written = {k: v for k, v in outputs.items() if v not in (None, "")}
        if written:
            lines.append("Written:")
            width = max(len(self._name(k)) for k in written)
            for k, v in written.items():
                paths = v if isinstance(v, (list, tuple)) else [v]
                lines += [f"  {self._name(k) if i == 0 else '':<{width}}  {p}" for i, p in enumerate(paths)]
        figures = {k: v for k, v in metrics.items() if v is not None and k != "seconds"}
        if figures:
            lines.append("Figures:")
            width = max(len(k) for k in figures)
            lines += [f"  {k.replace('_', ' '):<{width}}  {_figure(v)}" for k, v in figures.items()]
        self._write(self.out, "\n".join(lines))

    def error(self, kind: str, message: str) -> None:
        self.close()
        if kind == "cancelled":
            how = message.removeprefix("stopped by signal ").replace("SIGINT", "Ctrl-C")
            self._line(f"cwsc {self.command}: stopped ({how}); your files are as they were.")
        elif kind == "bad_input":
            self._line(f"cwsc {self.command}: {self.rename(message)}")
        else:
            self._line(f"cwsc {self.command} failed: {message}")

    # -- helpers -----------------------------------------------------------------------------
    def rename(self, message: str) -> str:
        """The backend's message in the words of the command line."""
        return rename_parameters(message, self.option, self.ambiguous)

    def _name(self, output: str) -> str:
        return self.option(output) or output

    def _bar(self):
        if self.bar is None:
            import os

            from tqdm import tqdm

            try:
                columns = os.get_terminal_size(self.err.fileno()).columns
            except (AttributeError, OSError, ValueError):
                columns = 0
            # A terminal that reports no size (some remote shells, a pty without one) gets a
            # fixed width: tqdm would draw nothing at all.
            fixed = {"ncols": 100, "nrows": 24} if columns < 40 else {"dynamic_ncols": True}
            self.bar = tqdm(
                total=100.0,
                file=self.err,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {elapsed} elapsed, {remaining} left{postfix}",
                leave=False,
                mininterval=0.2,
                **fixed,
            )
        return self.bar

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.err)
        else:
            self._write(self.err, text)

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    def close(self) -> None:
        """Take the bar off the screen (before a summary, an error, or the process's end)."""
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
