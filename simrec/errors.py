"""User-facing errors.

Every error a user can cause (a bad file, a bad flag, an infeasible request) is raised as a
:class:`SimrecError` that names *where* the problem is (file, and inside it the batch, table, line or
field) and *how to fix it*. The CLI prints it as one paragraph and exits with status 2; it never shows
a traceback for these. Library users catch :class:`SimrecError` (or a subclass) and read its fields.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SimrecError",
    "TraceFormatError",
    "ConfigError",
    "ConvertError",
    "atomic_output",
    "did_you_mean",
    "did_you_mean_or_list",
    "read_json",
]


@dataclass
class SimrecError(Exception):
    """An error caused by the user's input, with the place and the fix.

    Attributes:
        message: what is wrong, in one sentence.
        path: the file concerned, if any.
        where: the place inside the file (``"batch 3, table 'C7'"``, ``"line 17"``, ``"field hw.dram"``).
        fix: what the user should do.
    """

    message: str
    path: str | os.PathLike[str] | None = None
    where: str | None = None
    fix: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = []
        loc = []
        if self.path is not None:
            loc.append(str(self.path))
        if self.where:
            loc.append(self.where)
        if loc:
            parts.append(": ".join(loc) + ":")
        parts.append(self.message.rstrip("."))
        text = " ".join(parts) + "."
        if self.fix:
            text += " Fix: " + self.fix.rstrip(".") + "."
        return text


class TraceFormatError(SimrecError):
    """A ``.trc`` file (or an array handed to the trace writer) is malformed."""


class ConfigError(SimrecError):
    """A hardware/plan/sweep configuration is malformed or inconsistent."""


class ConvertError(SimrecError):
    """A source data file handed to a converter is malformed."""


class atomic_output:  # noqa: N801 - used like a function in ``with`` statements
    """Context manager that yields a temporary path next to ``path`` and renames it on success.

    On any exception the temporary file is removed, so no partial output file is left behind.
    Writers that stay open across calls (e.g. :class:`simrec.trace.format.TraceWriter`) use
    :meth:`commit` and :meth:`discard` directly instead of the ``with`` statement.

    >>> with atomic_output("out.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        # pid and object id: two outputs to one path (other process, other thread) never collide
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{id(self):x}")

    def __enter__(self) -> Path:
        if self.path.parent and not self.path.parent.exists():
            raise SimrecError(
                "the output folder does not exist",
                path=self.path,
                fix=f"create {self.path.parent} first or choose another output path",
            )
        return self.tmp

    def commit(self) -> Path:
        """Move the finished temporary file onto ``path``; returns ``path``."""
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (if it was created)."""
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def read_json(path: str | Path, what: str, fix: str, bad_json_fix: str | None = None) -> Any:
    """The parsed JSON file at ``path``; a missing or unreadable file, or text that is not JSON
    (a truncated copy, say), raises :class:`SimrecError` naming ``what`` the file should be, the
    file and ``fix`` (``bad_json_fix`` for the second case, when it needs another remedy)."""
    import json

    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SimrecError(f"cannot read {what} ({e.strerror or e})", path=path, fix=fix) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SimrecError(
            f"{what} is not valid JSON ({e.msg} at line {e.lineno}; truncated?)",
            path=path,
            fix=bad_json_fix or fix,
        ) from None


def did_you_mean(
    word: object,
    choices: Iterable[object],
    n: int = 1,
    cutoff: float = 0.6,
    *,
    form: str = " (did you mean {}?)",
) -> str:
    """A ready-to-append ``" (did you mean 'x'?)"`` for the choices closest to ``word``, or ``""``.

    Matching is :func:`difflib.get_close_matches` (case-sensitive: ``'DRAM'`` does not match
    ``'dram'``) over the choices as strings, keeping up to ``n`` with a similarity of at least
    ``cutoff``. ``form`` is the phrase, with ``{}`` standing for the quoted matches, best first
    (``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``).
    """
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)
    if not matches:
        return ""
    quoted = [repr(m) for m in matches]
    names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return form.format(names)


def did_you_mean_or_list(
    word: object,
    choices: Iterable[object],
    otherwise: str,
    cutoff: float = 0.6,
    limit: int | None = None,
) -> str:
    """``"did you mean 'x'? (OTHERWISE: a, b, c)"``, or ``"OTHERWISE: a, b, c"`` with no match.

    The choices are listed in the order given, the first ``limit`` of them then ``...`` when there
    are more; matching is that of :func:`did_you_mean`.
    """
    opts = [str(c) for c in choices]
    shown = opts if limit is None or len(opts) <= limit else [*opts[:limit], "..."]
    listing = f"{otherwise}: {', '.join(shown)}"
    hint = did_you_mean(word, opts, cutoff=cutoff, form="did you mean {}? ")
    return f"{hint}({listing})" if hint else listing
