"""What-if analyses for the model owners: how much of the held-out error a missing mechanism
explains. Diagnostics only — the simulator does not use them.

* :func:`cache_hit_estimate`: the fraction of a workload's lookups that fall on rows a cache of
  ``cache_bytes`` can hold (the hottest rows: uniform ``K / rows``, Zipf the CDF at ``K``), from
  the workload's own index distribution.
* :func:`gpu_output_write_whatif`: refit the reads-only GPU gather formula with one extra term for
  the pooled outputs, ``batch * row_bytes / (write_efficiency * hbm_peak)``, on the same
  calibration runs, and report the held-out error it would reach (the what-if that motivated the
  model's ``output_efficiency``, kept for reference; it has no L2 term).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simrec.calibrate.fit import H100_HBM_PEAK, levenberg_marquardt
from simrec.calibrate.heldout import Workload, zipf_cdf
from simrec.calibrate.validate import summarise

__all__ = ["cache_hit_estimate", "gpu_output_write_whatif"]


def cache_hit_estimate(w: Workload, cache_bytes: float) -> float:
    """Fraction of lookups on the ``cache_bytes / row_bytes`` hottest rows of ``w``."""
    k = int(cache_bytes // w.row_bytes)
    if k >= w.rows:
        return 1.0
    if k <= 0:
        return 0.0
    if w.dist == "zipf":
        return float(zipf_cdf(w.rows, w.alpha)[k - 1])
    return k / w.rows


def gpu_output_write_whatif(probe: dict[str, Any], hbm_peak_Bps: float = H100_HBM_PEAK) -> dict:
    """Fit ``launch + lookups*rb/(eff(rb)*peak) + batch*rb/(w_eff*peak)`` to the probe's
    calibration runs; return the fitted values and the held-out errors it gives."""
    cal = [(Workload.from_dict(p["workload"]), p["median_s"]) for p in probe["calibration"]]
    ckeys = {(w.rows, w.dim, w.pooling, w.batch, w.dist) for w, _ in cal}
    held = [
        (w, p["median_s"])
        for p in probe["heldout"]
        if (w := Workload.from_dict(p["workload"]))
        and (w.rows, w.dim, w.pooling, w.batch, w.dist) not in ckeys
    ]
    sizes = sorted({w.row_bytes for w, _ in cal})
    xs = np.log2(sizes)

    def model(x: np.ndarray, w: Workload) -> float:
        eff = float(np.interp(math.log2(w.row_bytes), xs, np.exp(x[2:])))
        reads = w.lookups * w.row_bytes / (eff * hbm_peak_Bps)
        writes = w.batch * w.row_bytes / (math.exp(x[1]) * hbm_peak_Bps)
        return math.exp(x[0]) + reads + writes

    def resid(x: np.ndarray) -> np.ndarray:
        return np.array([math.log(model(x, w) / t) for w, t in cal])

    n = len(sizes)
    x0 = np.array([math.log(15e-6), math.log(0.5)] + [math.log(0.4)] * n)
    x, r = levenberg_marquardt(
        resid,
        x0,
        iters=100,
        step=1e-4,
        lo=[math.log(1e-7), math.log(1e-3)] + [math.log(1e-3)] * n,
        hi=[math.log(1e-3), 0.0] + [0.0] * n,
    )
    rows = [
        {
            "name": w.name,
            "measured_s": t,
            "predicted_s": model(x, w),
            "l2_hit_estimate": cache_hit_estimate(w, 50e6),
        }
        for w, t in held
    ]
    out = summarise(rows)
    out.update(
        launch_s=math.exp(x[0]),
        write_efficiency=math.exp(x[1]),
        gather_efficiency=[(s, float(math.exp(v))) for s, v in zip(sizes, x[2:], strict=True)],
        calibration_geomean_abs_error=float(np.exp(np.mean(np.log(np.abs(np.expm1(r)) + 1e-12)))),
    )
    return out
