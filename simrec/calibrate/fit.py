"""Fitting the CPU-DRAM and GPU model parameters to measurements, with residuals.

CPU-DRAM (the parameters :class:`~simrec.sim.systems.cpu_dram.CpuDramSystem` uses)
----------------------------------------------------------------------------------
:mod:`simrec.calibrate.cpufit` (re-exported here: :class:`CpuFit`, :func:`fit_cpu`,
:func:`predict_cpu`, ...): per embedding-bag call ``call_overhead + max(t_pool, t_dram, t_llc)``
with an LRU model of the LLC in front of an effective DRAM; the data rate is searched on a grid
(the timing model rounds to whole cycles), then every parameter is refined by Levenberg-Marquardt
on the squared log error of the calibration points. The procedure is in that module's docstring.

GPU (the parameters :class:`~simrec.sim.components.gpu.GpuParams` uses)
-----------------------------------------------------------------------
A gather kernel takes ``kernel_launch_s + misses * row_bytes / (eff(row_bytes) * hbm_peak) +
l2_hits * sectors(row_bytes) / l2_bandwidth + bags * row_bytes / (output_efficiency *
hbm_peak)``, the L2 hits of each run coming from the simulator's LRU model of the L2 in the warm
state of the measurement. The fit (:func:`fit_gpu`, procedure in its docstring) finds one launch
overhead, one efficiency per calibrated row size, the output efficiency and (when the calibration
runs include L2-bound ones) the L2 bandwidth, minimising the squared log error over the
calibration runs; the HBM peak is the datasheet figure of the probed GPU (:data:`GPU_SPECS`);
``mlp_efficiency`` = measured bf16 matmul rate / datasheet peak; the PCIe ``efficiency`` =
measured pinned H2D rate / Gen5 x16 raw.

What the fits cannot do: represent mechanisms the models lack (caches in front of DRAM/HBM,
per-bag output writes, per-thread memory-level parallelism); their effect shows in the residuals
and in the held-out validation, which docs/validation.md discusses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simrec.calibrate.cpufit import (
    CpuFit,
    cpu_fit_inputs,
    cpu_system_dict,
    fit_cpu,
    llc_edge_note,
    predict_cpu,
    predict_cpu_gather,
    steady_detail,
    workload_batches,
)
from simrec.calibrate.heldout import Workload
from simrec.errors import SimrecError

__all__ = [
    "levenberg_marquardt",
    "CpuFit",
    "cpu_system_dict",
    "fit_cpu",
    "llc_edge_note",
    "predict_cpu",
    "predict_cpu_gather",
    "GpuFit",
    "GpuSpec",
    "GPU_SPECS",
    "gpu_spec",
    "fit_gpu",
    "l2_warm_hits",
    "predict_gpu",
    "predict_gpu_detail",
    "check_noise",
    "median_interval",
    "noise_of",
    "cpu_fit_inputs",
    "H100_BF16_PEAK",
    "PCIE5_X16_RAW",
]

#: dense BF16 peak of the H100 SXM, hwconfigs/multi_gpu.yaml ([Klockwood])
H100_BF16_PEAK = 989.4e12
#: PCIe Gen5 x16 raw rate per direction, reference/data.md §5.1
PCIE5_X16_RAW = 63.02e9
#: H100 SXM HBM3 peak, reference/data.md §5.2
H100_HBM_PEAK = 3.35e12


# ------------------------------------------------------------------------------------ solver
def levenberg_marquardt(
    resid: Callable[[np.ndarray], np.ndarray],
    x0: Sequence[float],
    iters: int = 40,
    step: float = 1e-3,
    lo: Sequence[float] | None = None,
    hi: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``sum(resid(x)**2)`` from ``x0`` (forward-difference Jacobian, box ``[lo, hi]``).

    Returns ``(x, resid(x))``. Small and dependency-free; adequate for a handful of parameters.
    """
    x = np.asarray(x0, dtype=np.float64).copy()
    lo_a = np.full_like(x, -np.inf) if lo is None else np.asarray(lo, dtype=np.float64)
    hi_a = np.full_like(x, np.inf) if hi is None else np.asarray(hi, dtype=np.float64)
    x = np.clip(x, lo_a, hi_a)
    r = resid(x)
    cost = float(r @ r)
    lam = 1e-2
    for _ in range(iters):
        jac = np.empty((r.size, x.size))
        for k in range(x.size):
            xk = x.copy()
            h = step * max(1.0, abs(x[k]))
            xk[k] += h
            jac[:, k] = (resid(np.clip(xk, lo_a, hi_a)) - r) / h
        g = jac.T @ r
        a = jac.T @ jac
        improved = False
        for _ in range(10):
            try:
                dx = -np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-12), g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            xn = np.clip(x + dx, lo_a, hi_a)
            rn = resid(xn)
            cn = float(rn @ rn)
            if cn < cost:
                x, r, cost = xn, rn, cn
                lam = max(lam / 3, 1e-9)
                improved = True
                break
            lam *= 10
        if not improved or float(np.max(np.abs(dx))) < 1e-6:
            break
    return x, r


#: confidence of the noise check's interval for the median: ``1 - 2 * 0.5**5`` (93.75 %), the
#: coverage of ``[min, max]`` over five repetitions, so that with five repetitions the check is the
#: plain ``(max - min) / median`` it was before 2026-12-03
NOISE_CONFIDENCE = 1.0 - 2.0 * 0.5**5


def median_interval(times: Sequence[float]) -> tuple[float, float, float]:
    """Distribution-free confidence interval for the median of ``times``: the order statistics
    ``(x_(k), x_(n+1-k))`` with the largest ``k`` whose coverage, ``1 - 2 P(Binomial(n, 1/2) <
    k)``, is at least :data:`NOISE_CONFIDENCE` (``k = 1``, the full range, when no ``k`` reaches
    it, i.e. for fewer than five repetitions). Returns ``(low, high, (high - low) / median)``.

    Five repetitions give ``k = 1`` (the full range), nine ``k = 2``, fifteen ``k = 4``: more
    repetitions narrow the interval, while one outlier no longer decides it."""
    xs = sorted(float(t) for t in times)
    n = len(xs)
    if n == 0:
        return 0.0, 0.0, 0.0
    k, below = 1, 0.0  # below: P(Binomial(n, 1/2) < k)
    for j in range(1, (n + 1) // 2):
        below += math.comb(n, j - 1) / 2.0**n  # now P(Binomial < j)
        nxt = below + math.comb(n, j) / 2.0**n  # P(Binomial < j + 1)
        if 1.0 - 2.0 * nxt >= NOISE_CONFIDENCE:
            k = j + 1
        else:
            break
    lo, hi = xs[k - 1], xs[n - k]
    med = float(np.median(xs))
    return lo, hi, (hi - lo) / med if med > 0 else 0.0


def _interval_of(m: dict[str, Any]) -> tuple[float, float, float]:
    """:func:`median_interval` of a measurement record's ``times_s``; ``(0, 0, spread)`` when
    it has no times."""
    ts = m.get("times_s")
    return median_interval(ts) if ts else (0.0, 0.0, float(m.get("spread", 0.0)))


def noise_of(m: dict[str, Any]) -> float:
    """The noise check's statistic for one measurement record: the relative width of
    :func:`median_interval` of its ``times_s`` (its ``spread`` when it has no times)."""
    return _interval_of(m)[2]


def check_noise(measurements: list[dict[str, Any]], max_spread: float, what: str = "") -> None:
    """Raise a :class:`SimrecError` naming the noisiest benchmarks when the median of any is
    uncertain by more than ``max_spread``: the relative width of its
    :data:`NOISE_CONFIDENCE` distribution-free interval (:func:`noise_of`), which over five
    repetitions is ``(max - min) / median``."""
    scored = [(_interval_of(m), m) for m in measurements]
    bad = sorted((x for x in scored if x[0][2] > max_spread), key=lambda x: -x[0][2])
    if not bad:
        return
    parts = []
    for (lo, hi, v), m in bad[:4]:
        n = len(m.get("times_s") or [])
        parts.append(f"{m['name']} {v:.0%} ({n} repetitions, interval {lo:.3g}-{hi:.3g} s)")
    raise SimrecError(
        f"the machine is too noisy to fit{what}: the median of {len(bad)} of "
        f"{len(measurements)} benchmarks is uncertain by more than {max_spread:.0%} "
        f"({NOISE_CONFIDENCE:.2%} distribution-free interval; the full range for 5 "
        f"repetitions) (worst: {', '.join(parts)}); no preset was written",
        where="calibration measurements",
        fix="run again on an idle machine (check `uptime`; stop other jobs, pin the CPU "
        "frequency), with more --reps (the interval narrows), or raise --max-spread if this "
        "variance is expected",
    )


def _by_name(ms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in ms}


# ------------------------------------------------------------------------------------ CPU
# the CPU-DRAM fit lives in simrec.calibrate.cpufit (re-exported at the top of this module)


def predict_detail(
    system: Any, w: Workload, cache: dict[str, Any] | None = None
) -> tuple[float, dict[str, float]]:
    """Model time per batch (s) of workload ``w`` on a built system (cpu_dram or multi_gpu),
    and the system's per-stage breakdown per batch (s)."""
    header, batches = workload_batches(w, cache)
    if getattr(system, "kind", "") == "cpu_dram":
        # the warm state of a measurement that cycles the batches (the LLC model keeps rows)
        t, br, _ = steady_detail(system, header, batches)
        return t, br
    res = system.simulate(batches, header)
    n = len(batches)
    return float(res.sim_time_s) / n, {k: float(v) / n for k, v in res.breakdown_s.items()}


def predict_system(system: Any, w: Workload, cache: dict[str, Any] | None = None) -> float:
    """Model time per batch (s) of workload ``w`` on a built system (cpu_dram or multi_gpu)."""
    return predict_detail(system, w, cache)[0]


# ------------------------------------------------------------------------------------ GPU
@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures of a GPU model that a probe is matched to (by name): what the fit
    measures efficiencies against and what the written preset's HBM and L2 are."""

    key: str
    label: str
    hbm_peak_Bps: float
    hbm_capacity: str
    l2_bytes: float
    bf16_peak: float
    #: overrides of the base preset's hbm devices (the base is the H100 multi_gpu preset)
    hbm_yaml: dict[str, Any] = field(default_factory=dict)
    sources: str = ""


#: GPUs the preset writer knows. H100 SXM: HBM3 3.35 TB/s (reference/data.md §5.2), 80 GB, 50 MB
#: L2 and 989.4 TFLOP/s dense BF16 (hwconfigs/multi_gpu.yaml [hpctech], [Klockwood]). H200 (SXM):
#: HBM3e 4.8 TB/s (data.md §5.2), 141 GB (NVIDIA H200 datasheet, as quoted in the device notes
#: of this workplace), 60 MB L2 (PyTorch's device properties on an H200 here), the H100's compute.
GPU_SPECS: dict[str, GpuSpec] = {
    "H100_SXM": GpuSpec(
        "H100_SXM",
        "H100 SXM5 80GB",
        3.35e12,
        "80 GiB",
        50e6,
        989.4e12,
        {},
        "HBM3 3.35 TB/s [data.md §5.2]; 80 GB, 50 MB L2, 989.4 TFLOP/s bf16 [multi_gpu.yaml]",
    ),
    "H200": GpuSpec(
        "H200",
        "H200 SXM 141GB",
        4.8e12,
        "141 GB",
        60e6,
        989.4e12,
        {
            "description": "141 GB HBM3e of one H200",
            "standard": "HBM3E",
            "stacks": 6,
            # 6 stacks x 16 channels x 64 bit = 768 B per transfer; 4.8 TB/s / 768 B
            "data_rate": "6.25 GT/s",
            "capacity": "141 GB",
        },
        "HBM3e 4.8 TB/s [data.md §5.2]; 141 GB [NVIDIA H200 datasheet]; 6 HBM3e stacks "
        "[recall], data rate derived = 4.8 TB/s / 768 B; 60 MB L2 [measured: torch device "
        "properties]; compute as H100 [datasheet]",
    ),
}


def gpu_spec(probe: dict[str, Any]) -> GpuSpec:
    """The :data:`GPU_SPECS` entry of the probed GPU, by its name, checked against the measured
    copy bandwidth (a device-to-device copy moves 2 bytes per byte copied; it must reach 40-100 %
    of the datasheet peak). Raises :class:`SimrecError` for a GPU not in the table."""
    info = probe.get("machine", {})
    name = str(info.get("gpu_name") or "")
    up = name.upper()
    key = None
    if "H200" in up:
        key = "H200"
    elif "H100" in up and ("HBM3" in up or "SXM" in up):
        key = "H100_SXM"
    if key is None:
        raise SimrecError(
            f"unknown GPU {name!r}: simrec knows the datasheet figures (HBM peak and capacity, "
            f"L2) of {', '.join(s.label for s in GPU_SPECS.values())} only",
            where="probe machine.gpu_name",
            fix="add the GPU to simrec.calibrate.fit.GPU_SPECS (with sources), or fit a probe "
            "run on one of those GPUs",
        )
    spec = GPU_SPECS[key]
    d2d = (probe.get("micro", {}).get("d2d_copy") or {}).get("GBps_read_plus_write")
    if d2d:
        ratio = float(d2d) * 1e9 / spec.hbm_peak_Bps
        if not 0.4 <= ratio <= 1.0:
            raise SimrecError(
                f"the probe names a {spec.label} but its measured copy bandwidth ({d2d:.0f} GB/s "
                f"read + write) is {ratio:.0%} of that GPU's {spec.hbm_peak_Bps / 1e12:.2f} TB/s "
                "peak (expected 40-100 %)",
                where="probe micro.d2d_copy",
                fix="check that the probe ran on the GPU it names (CUDA_VISIBLE_DEVICES, MIG), "
                "or add the GPU variant to simrec.calibrate.fit.GPU_SPECS",
            )
    return spec


@dataclass
class GpuFit:
    """Fitted single-GPU parameters and residuals.

    ``output_efficiency`` / ``l2_bandwidth_Bps`` are None when the mechanism is not in the preset
    (``held`` says why: not identifiable from the calibration runs)."""

    gpu_name: str
    kernel_launch_s: float
    gather_efficiency: list[tuple[int, float]]
    mlp_efficiency: float
    pcie_efficiency: float
    hbm_peak_Bps: float = H100_HBM_PEAK
    output_efficiency: float | None = None
    l2_bandwidth_Bps: float | None = None
    l2_bytes: float = 0.0
    gpu_model: str = "H100_SXM"
    held: dict[str, str] = field(default_factory=dict)
    residuals: list[dict[str, Any]] = field(default_factory=list)

    def params(self) -> Any:
        """The simulator's :class:`~simrec.sim.components.gpu.GpuParams` with these values (the
        rest as the H100 SXM: only the gather-related fields matter here)."""
        from simrec.sim.components.gpu import GpuParams
        from simrec.sim.components.hbm import HbmParams

        h = HbmParams.h100_sxm_hbm3()
        scale = self.hbm_peak_Bps / h.peak_bw_Bps
        hbm = HbmParams(**{**h.__dict__, "tCK_s": h.tCK_s / scale})
        return GpuParams(
            name=self.gpu_name,
            peak_flops=989.4e12,
            mlp_efficiency=min(max(self.mlp_efficiency, 1e-3), 1.0),
            kernel_launch_s=self.kernel_launch_s,
            hbm=hbm,
            hbm_capacity_bytes=80e9,
            gather_efficiency=tuple((int(r), float(e)) for r, e in self.gather_efficiency),
            output_efficiency=self.output_efficiency,
            l2_bytes=self.l2_bytes,
            l2_bandwidth_Bps=self.l2_bandwidth_Bps,
        )

    def gather_time_s(
        self, lookups: float, row_bytes: float, bags: float = 0.0, l2_hits: float = 0.0
    ) -> float:
        """The GPU component's gather formula (:meth:`GpuParams.gather_time_s`) with these
        parameters."""
        return self.params().gather_time_s(lookups, row_bytes, bags, l2_hits)


def l2_warm_hits(w: Workload, l2_bytes: float, cache: dict[str, Any] | None = None) -> float:
    """L2-hit lookups per batch of ``w`` in the steady state of the probe's measurement (its
    ``nbatches`` batches cycled), from the simulator's own L2 model: a one-GPU system whose GPU
    has an L2 of ``l2_bytes`` runs the batches twice and once; the difference is the warm pass."""
    from simrec.sim.components.gpu import GpuParams

    memo = (w, float(l2_bytes))
    if memo in _L2_HITS:
        return _L2_HITS[memo]
    hbm_fake = GpuFit(
        "probe", 1e-6, [(64, 0.5)], 0.5, 0.5, l2_bytes=l2_bytes, l2_bandwidth_Bps=1e12
    )
    p: GpuParams = hbm_fake.params()
    p = GpuParams(**{**p.__dict__, "hbm_capacity_bytes": max(1e12, 2.0 * w.table_bytes)})
    _, c = _warm_run(_one_gpu_system(p), w, cache)
    _L2_HITS[memo] = float(c.get("l2_hit_lookups", 0.0))
    return _L2_HITS[memo]


#: memo of :func:`l2_warm_hits` (deterministic in the workload and the L2 size)
_L2_HITS: dict[tuple[Workload, float], float] = {}


def _one_gpu_system(p: Any, pcie: Any = None) -> Any:
    from simrec.sim.components.network import NetDim, NetworkParams
    from simrec.sim.components.pcie import PcieParams
    from simrec.sim.systems.multi_gpu import MultiGpuSystem

    net = NetworkParams(dims=(NetDim(npus=1, bandwidth_Bps=1e12, latency_s=0.0),), name="none")
    return MultiGpuSystem(
        [p],
        net,
        [pcie or PcieParams(generation=5, lanes=16)],
        host_capacity_bytes=1e12,
        gpu_names=[p.name],
        name=f"one:{p.name}",
    )


def _warm_run(
    system: Any, w: Workload, cache: dict[str, Any] | None = None
) -> tuple[float, dict[str, float]]:
    """Time per batch (s) and counters per batch of the warm pass: ``simulate(batches * 2) -
    simulate(batches)`` (the state of caches after one pass is the steady state of cycling)."""
    header, batches = workload_batches(w, cache)
    one = system.simulate(batches, header)
    two = system.simulate(list(batches) + list(batches), header)
    n = len(batches)
    counters = {
        k: (float(two.counters[k]) - float(one.counters.get(k, 0.0))) / n
        for k in two.counters
        if isinstance(two.counters[k], int | float)
    }
    return (float(two.sim_time_s) - float(one.sim_time_s)) / n, counters


def _fit_gpu_inputs(
    probe: dict[str, Any], l2_bytes: float
) -> tuple[list[Workload], np.ndarray, np.ndarray]:
    pts = probe["calibration"]
    wl = [Workload.from_dict(p["workload"]) for p in pts]
    t = np.array([float(p["median_s"]) for p in pts])
    hits = np.array([l2_warm_hits(w, l2_bytes) for w in wl])
    return wl, t, hits


#: A calibration run counts as L2-bound when at least this share of its lookups hit the L2 (warm).
L2_POINT_SHARE = 0.5
#: The L2 bandwidth is fitted only with at least this many L2-bound calibration runs.
L2_MIN_POINTS = 2


def fit_gpu(probe: dict[str, Any], hbm_peak_Bps: float | None = None) -> GpuFit:
    """Fit the GPU gather parameters to the probe's calibration runs (never its held-out runs).

    Procedure (fixed before any H200 data existed; docs/validation.md):

    1. the GPU model and its datasheet HBM peak from the probed name (:func:`gpu_spec`;
       ``hbm_peak_Bps`` overrides the peak); the L2 size = the probed ``l2_bytes`` (else the
       datasheet's);
    2. every calibration run's warm L2-hit lookups per batch from the simulator's L2 model
       (:func:`l2_warm_hits`), which does not depend on the fitted values;
    3. parameters: launch overhead, one gather efficiency per calibrated row size, the output
       efficiency (always: the runs have pooling 2 to 32, so the per-bag term is identifiable),
       and the L2 bandwidth only when at least :data:`L2_MIN_POINTS` runs have >=
       :data:`L2_POINT_SHARE` of their lookups hitting the L2 — else the L2 is left out of the
       preset (``l2_bandwidth_Bps`` None, said in ``held``);
    4. start values from a linear least-squares fit of the time (launch + per-size read bytes +
       output bytes + L2 sector bytes), relative-error weighted; then Levenberg-Marquardt on the
       log parameters minimising the squared log error of :meth:`GpuParams.gather_time_s` — the
       simulator's formula — over all calibration runs, equally weighted;
    5. ``mlp_efficiency`` = measured bf16 matmul / datasheet peak; PCIe ``efficiency`` = measured
       pinned H2D / 63.02 GB/s.
    """
    pts = probe["calibration"]
    if not pts:
        raise SimrecError(
            "the probe file has no calibration runs",
            where="calibration",
            fix="run python3 -m simrec.calibrate.gpu_probe again",
        )
    spec = gpu_spec(probe)
    peak = float(hbm_peak_Bps or spec.hbm_peak_Bps)
    l2_bytes = float(probe.get("machine", {}).get("l2_bytes") or spec.l2_bytes)
    wl, t, hits = _fit_gpu_inputs(probe, l2_bytes)
    sizes = sorted({w.row_bytes for w in wl})
    share = hits / np.array([w.lookups for w in wl], dtype=np.float64)
    held: dict[str, str] = {}
    fit_l2 = int(np.sum(share >= L2_POINT_SHARE)) >= L2_MIN_POINTS
    if not fit_l2:
        held["l2_bandwidth"] = (
            f"not identifiable: {int(np.sum(share >= L2_POINT_SHARE))} calibration runs with >= "
            f"{L2_POINT_SHARE:.0%} L2 hits (need {L2_MIN_POINTS}); the L2 is not modelled"
        )
    sec = np.array([32 * math.ceil(w.row_bytes / 32) for w in wl], dtype=np.float64)
    # linear start: t = a + sum_s [rb == s] * miss bytes / bw_s + bag bytes / bw_o + hit sectors / bw_l2
    cols = [np.ones(len(t))]
    cols += [
        np.array(
            [
                (w.lookups - h) * w.row_bytes * (w.row_bytes == s)
                for w, h in zip(wl, hits, strict=True)
            ]
        )
        for s in sizes
    ]
    cols.append(np.array([w.batch * w.row_bytes for w in wl], dtype=np.float64))
    if fit_l2:
        cols.append(hits * sec)
    x_lin = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(x_lin / t[:, None], np.ones(len(t)), rcond=None)
    a0 = float(np.clip(coef[0], 1e-6, 1e-4))
    n = len(sizes)
    eff0 = [float(np.clip(1.0 / (c * peak), 1e-3, 1.0)) if c > 0 else 0.3 for c in coef[1 : 1 + n]]
    co = coef[1 + n]
    oe0 = float(np.clip(1.0 / (co * peak), 1e-3, 1.0)) if co > 0 else 0.2
    bw0 = 2.0 * peak
    if fit_l2 and coef[2 + n] > 0:
        bw0 = float(np.clip(1.0 / coef[2 + n], 0.1 * peak, 20 * peak))
    base = GpuFit(
        gpu_name=str(probe["machine"].get("gpu_name", "gpu")),
        kernel_launch_s=a0,
        gather_efficiency=[],
        mlp_efficiency=1.0,
        pcie_efficiency=1.0,
        hbm_peak_Bps=peak,
        l2_bytes=l2_bytes,
        gpu_model=spec.key,
        held=held,
    )

    def make(x: np.ndarray) -> GpuFit:
        return GpuFit(
            **{
                **base.__dict__,
                "kernel_launch_s": float(math.exp(x[0])),
                "gather_efficiency": [
                    (s, float(min(1.0, math.exp(v))))
                    for s, v in zip(sizes, x[1 : 1 + n], strict=True)
                ],
                "output_efficiency": float(min(1.0, math.exp(x[1 + n]))),
                "l2_bandwidth_Bps": float(math.exp(x[2 + n])) if fit_l2 else None,
                "held": dict(held),
                "residuals": [],
            }
        )

    def predict(g: GpuFit) -> np.ndarray:
        p = g.params()
        return np.array(
            [
                p.gather_time_s(w.lookups, w.row_bytes, w.batch, h)
                for w, h in zip(wl, hits, strict=True)
            ]
        )

    def resid(x: np.ndarray) -> np.ndarray:
        return np.log(predict(make(x))) - np.log(t)

    x0 = [math.log(a0), *np.log(eff0), math.log(oe0)] + ([math.log(bw0)] if fit_l2 else [])
    lo = [math.log(1e-7)] + [math.log(1e-3)] * (n + 1) + ([math.log(0.05 * peak)] if fit_l2 else [])
    hi = [math.log(1e-3)] + [0.0] * (n + 1) + ([math.log(50 * peak)] if fit_l2 else [])
    x, _ = levenberg_marquardt(resid, x0, iters=80, step=1e-4, lo=lo, hi=hi)
    g = make(x)
    micro = probe.get("micro", {})
    mm = micro.get("matmul")
    if mm and str(mm.get("dtype", "")).endswith("bfloat16"):
        g.mlp_efficiency = float(np.clip(mm["TFLOPs"] * 1e12 / spec.bf16_peak, 1e-3, 1.0))
    else:
        g.mlp_efficiency = 0.6
    h2d = micro.get("h2d_pinned")
    g.pcie_efficiency = float(np.clip(h2d["GBps"] * 1e9 / PCIE5_X16_RAW, 1e-3, 1.0)) if h2d else 0.8
    pred = predict(g)
    g.residuals = [
        {
            "name": w.name,
            "kind": "embedding_bag",
            "measured_s": float(tt),
            "predicted_s": float(pp),
            "residual": float(pp) / float(tt) - 1,
            "l2_hit_share": float(s),
            "in_fit": True,
        }
        for w, tt, pp, s in zip(wl, t, pred, share, strict=True)
    ]
    return g


def gpu_system(hw: Any, gpu: str = "gpu0") -> Any:
    """A one-GPU :class:`~simrec.sim.systems.multi_gpu.MultiGpuSystem` from GPU ``gpu`` of ``hw``
    (its parameters, its PCIe link; a one-member network, so no all-to-all)."""
    links = [n for n, lk in hw.links.items() if lk.kind == "pcie" and gpu in (lk.endpoints or [])]
    pcie = hw.params(links[0]) if links else None
    return _one_gpu_system(hw.gpu_params(gpu), pcie)


def predict_gpu_detail(
    hw: Any, w: Workload, cache: dict[str, Any] | None = None
) -> tuple[float, dict[str, float]]:
    """Multi-GPU model time per batch (s) of ``w`` on one GPU of ``hw`` (HBM-resident table) in
    the steady state of the probe's measurement (its batches cycled: :func:`_warm_run`), and the
    simulator's counters per batch (``l2_hit_lookups`` etc.)."""
    return _warm_run(gpu_system(hw), w, cache)


def predict_gpu(hw: Any, w: Workload, cache: dict[str, Any] | None = None) -> float:
    """Multi-GPU model time per batch (s) of ``w`` on one GPU of ``hw`` (warm, as measured)."""
    return predict_gpu_detail(hw, w, cache)[0]
