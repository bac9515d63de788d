"""Reports: compare systems (throughput, latency, breakdown, energy, speedup) and export them as
JSON/CSV/Parquet and a self-contained HTML page with matplotlib figures (see docs/report.md).
"""

from __future__ import annotations

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
