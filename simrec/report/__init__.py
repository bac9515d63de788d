"""Reports: compare systems (throughput, latency, breakdown, energy, speedup) and export them as
JSON/CSV/Parquet and a self-contained HTML page with matplotlib figures (see docs/report.md).

The names below are imported from their submodules on first use, so importing a light submodule
(``simrec.report.systems``, ``simrec.report.cli``) does not import pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simrec.util import lazy_exports

if TYPE_CHECKING:
    from simrec.report.core import Report, build_report, check_same_shape, write_report
    from simrec.report.systems import SystemRun, SystemSpec, parse_system, run_system

__all__ = [
    "Report",
    "SystemRun",
    "SystemSpec",
    "build_report",
    "check_same_shape",
    "parse_system",
    "run_system",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["Report", "build_report", "check_same_shape", "write_report"], "core"),
        **dict.fromkeys(["SystemRun", "SystemSpec", "parse_system", "run_system"], "systems"),
    },
)
