"""Fitting the CPU-DRAM and GPU model parameters to measurements, with residuals.

CPU-DRAM (the parameters :class:`~simrec.sim.systems.cpu_dram.CpuDramSystem` uses)
----------------------------------------------------------------------------------
The system charges a batch ``max(t_pool, t_dram)``: the cores' pooling time
``lookups * (lookup_cycles + dim / (flops_per_cycle * pool_efficiency)) / freq / cores`` and the
DRAM timing model's time to read the batch's distinct rows. A VM's memory system is not visible
(channels, ranks, DIMM speed), and with few cores the achievable random-read rate is set by the
cores' outstanding misses rather than by the DIMMs, so the fit describes an **effective DRAM**: one
64-bit DDR4 channel, one rank, one bank group of 16 banks (a row's consecutive 64 B bursts stay in
one DRAM row, as consecutive cache lines do), whose two free parameters are

* ``data_rate``: the bus rate, so the channel streams at the measured sequential read bandwidth;
* ``tFAW``: the four-activate window, so the activate rate (one per random row) matches the
  measured random-row rate (``tRRD = tFAW / 4``; ``tRC`` short enough never to bind);

``CL = tRCD = tRP`` = one third of the measured DRAM pointer-chase latency. ``lookup_cycles`` and
``pool_efficiency`` start from a straight-line fit of cycles per lookup against ``dim`` on
L2-resident embedding-bag runs. All four are then refined together (Levenberg-Marquardt on log
parameters) to minimise the squared log error of the model's predictions for the embedding-bag
calibration points and the all-thread gathers; ``mlp_efficiency`` = measured SGEMM FLOP/s over
the SIMD peak. Every point's residual (model / measured - 1) is reported.

GPU (the parameters :class:`~simrec.sim.components.gpu.GpuParams` uses)
-----------------------------------------------------------------------
A gather kernel takes ``kernel_launch_s + lookups * row_bytes / (eff(row_bytes) * hbm_peak)``.
The fit finds one launch overhead and one efficiency per calibrated row size (64/256/512 B),
minimising the squared log error over the calibration runs; ``mlp_efficiency`` = measured bf16
matmul rate / datasheet peak; the PCIe ``efficiency`` = measured pinned H2D rate / Gen5 x16 raw.

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

from simrec.calibrate.heldout import Workload, make_batch, zipf_cdf
from simrec.errors import SimrecError

__all__ = [
    "levenberg_marquardt",
    "CpuFit",
    "cpu_system_dict",
    "fit_cpu",
    "predict_cpu",
    "predict_cpu_gather",
    "GpuFit",
    "fit_gpu",
    "predict_gpu",
    "check_noise",
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


def check_noise(measurements: list[dict[str, Any]], max_spread: float, what: str = "") -> None:
    """Raise a :class:`SimrecError` naming the noisiest benchmarks when any spread exceeds
    ``max_spread`` (relative ``(max - min) / median`` across repetitions)."""
    bad = sorted((m for m in measurements if m["spread"] > max_spread), key=lambda m: -m["spread"])
    if not bad:
        return
    worst = ", ".join(
        f"{m['name']} {m['spread']:.0%} (times {min(m['times_s']):.3g}-{max(m['times_s']):.3g} s)"
        for m in bad[:4]
    )
    raise SimrecError(
        f"the machine is too noisy to fit{what}: {len(bad)} of {len(measurements)} benchmarks "
        f"varied by more than {max_spread:.0%} across repetitions (worst: {worst}); no preset "
        "was written",
        where="calibration measurements",
        fix="run again on an idle machine (check `uptime`; stop other jobs, pin the CPU "
        "frequency), or raise --max-spread if this variance is expected",
    )


def _by_name(ms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in ms}


# ------------------------------------------------------------------------------------ CPU
@dataclass
class CpuFit:
    """Fitted CPU-DRAM parameters and their residuals (model / measured - 1 per point)."""

    cores: int
    freq_hz: float
    flops_per_cycle: float
    simd_width_bits: int
    llc_bytes: float
    memory_bytes: float
    lookup_cycles: float
    pool_efficiency: float
    mlp_efficiency: float
    data_rate: float  # transfers/s of the effective 64-bit channel
    tFAW_s: float
    latency_s: float
    initial: dict[str, float] = field(default_factory=dict)
    residuals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stream_Bps(self) -> float:
        return self.data_rate * 8

    def rms_log_residual(self) -> float:
        r = [math.log1p(x["residual"]) for x in self.residuals if x.get("in_fit")]
        return float(np.sqrt(np.mean(np.square(r)))) if r else 0.0


def _ns(x: float) -> str:
    return f"{x * 1e9:.6g} ns"


def cpu_system_dict(f: CpuFit, name: str = "measured_cpu") -> dict[str, Any]:
    """The hardware config (plain data with units, as the YAML holds it) of a fit."""
    lat3 = f.latency_s / 3
    tck = 2.0 / f.data_rate
    tfaw = max(f.tFAW_s, 4 * tck)
    gib = max(1, int(f.memory_bytes // 2**30))
    return {
        "name": name,
        "description": "measured",
        "devices": {
            "cpu0": {
                "kind": "cpu",
                "sockets": 1,
                "cores_per_socket": int(f.cores),
                "frequency": f"{f.freq_hz / 1e9:.6g} GHz",
                "simd_width_bits": int(f.simd_width_bits),
                "flops_per_cycle": float(f.flops_per_cycle),
                "pool_efficiency": float(f.pool_efficiency),
                "lookup_cycles": float(f.lookup_cycles),
                "mlp_efficiency": float(f.mlp_efficiency),
                "llc_size": f"{int(f.llc_bytes)} B",
            },
            "dram0": {
                "kind": "dram",
                "attached_to": "cpu0",
                "standard": "DDR4",
                "data_rate": f"{f.data_rate / 1e6:.6g} MT/s",
                "channels": 1,
                "ranks_per_channel": 1,
                "bank_groups": 1,
                "banks_per_group": 16,
                "bus_width_bits": 64,
                "burst_length": 8,
                "row_buffer_size": "8 KiB",
                "capacity": f"{gib} GiB",
                "timing": {
                    "CL": _ns(lat3),
                    "tRCD": _ns(lat3),
                    "tRP": _ns(lat3),
                    "tRAS": _ns(lat3),
                    "tRRD_S": _ns(tfaw / 4),
                    "tRRD_L": _ns(tfaw / 4),
                    "tFAW": _ns(tfaw),
                    "tCCD_S": "4 nCK",
                    "tCCD_L": "4 nCK",
                    "tRTP": "4 nCK",
                },
            },
        },
    }


def _cpu_system(f: CpuFit) -> Any:
    from simrec.hw.schema import SystemConfig
    from simrec.sim.systems.cpu_dram import CpuDramSystem

    hw = SystemConfig.from_dict(cpu_system_dict(f))
    return CpuDramSystem.from_hw(hw)


def _batches(w: Workload) -> tuple[Any, list[Any]]:
    from simrec.trace.format import Batch, TableSpec, TraceHeader

    header = TraceHeader(
        tables=(TableSpec(name="t0", rows=w.rows, dim=w.dim),),
        batch_size=w.batch,
        provenance={"generator": "simrec.calibrate.heldout", "params": w.to_dict()},
    )
    cdf = zipf_cdf(w.rows, w.alpha) if w.dist == "zipf" else None
    out = []
    for i in range(w.nbatches):
        idx, offs = make_batch(w, i, cdf)
        out.append(Batch(offsets=offs, indices=idx, num_tables=1, number=i))
    return header, out


def predict_detail(
    system: Any, w: Workload, cache: dict[str, Any] | None = None
) -> tuple[float, dict[str, float]]:
    """Model time per batch (s) of workload ``w`` on a built system (cpu_dram or multi_gpu),
    and the system's per-stage breakdown per batch (s)."""
    if cache is not None and w.name in cache:
        header, batches = cache[w.name]
    else:
        header, batches = _batches(w)
        if cache is not None:
            cache[w.name] = (header, batches)
    res = system.simulate(batches, header)
    n = len(batches)
    return float(res.sim_time_s) / n, {k: float(v) / n for k, v in res.breakdown_s.items()}


def predict_system(system: Any, w: Workload, cache: dict[str, Any] | None = None) -> float:
    """Model time per batch (s) of workload ``w`` on a built system (cpu_dram or multi_gpu)."""
    return predict_detail(system, w, cache)[0]


def predict_cpu(f: CpuFit, w: Workload, cache: dict[str, Any] | None = None) -> float:
    """CPU-DRAM model time per batch (s) of workload ``w`` with the fitted parameters."""
    return predict_system(_cpu_system(f), w, cache)


def predict_cpu_gather(f: CpuFit, row_bytes: int, rows: int, lookups: int, seed: int = 0) -> float:
    """DRAM-model time (s) of a bare random gather (``lookups`` uniform rows of ``row_bytes`` out
    of ``rows``; distinct rows read once), as the cpu_dram system reads a batch."""
    from simrec.hw.schema import SystemConfig
    from simrec.sim.components.dram import channel_times, count_chunk, unique_first

    hw = SystemConfig.from_dict(cpu_system_dict(f))
    p = hw.params("dram0")
    nb = max(1, -(-row_bytes // p.burst_bytes))
    n = int(min(lookups, 2**16))  # the model's time is linear in the count: scale a sample
    idx = np.random.default_rng([seed, row_bytes]).integers(0, rows, n, dtype=np.int64)
    addr = unique_first(idx) * (nb * p.burst_bytes)
    open_row = np.full(p.total_banks, -1, dtype=np.int64)
    t = float(channel_times(p, count_chunk(p, addr, nb, open_row)).max())
    return t * lookups / n


def _cpu_resid_points(
    data: dict[str, Any],
) -> tuple[list[tuple[Workload, float]], list[dict[str, Any]]]:
    ms = data["measurements"]
    bags = [
        (Workload.from_dict(m["params"]["workload"]), m["median_s"] / m["work"])
        for m in ms
        if m["unit"] == "batches" and m["params"].get("impl", data["impl"]) == data["impl"]
    ]
    nthr = data["threads"]
    gathers = [m for m in ms if m["name"].startswith("gather_") and m["params"]["threads"] == nthr]
    return bags, gathers


def cpu_fit_inputs(data: dict[str, Any]) -> set[str]:
    """Names of the measurements the CPU fit uses (the noise check looks at these): the
    all-thread sequential read and gathers, the largest pointer chase and the embedding-bag runs."""
    ms = data["measurements"]
    n = data["threads"]
    chases = [m for m in ms if m["name"].startswith("chase_")]
    names = {f"seq_read_t{n}"} | {
        m["name"]
        for m in ms
        if m["unit"] == "batches" and m["params"].get("impl", data["impl"]) == data["impl"]
    }
    names |= {f"gather_{rb}B_t{n}" for rb in (64, 256, 512)}
    if chases:
        names.add(max(chases, key=lambda m: m["params"]["bytes"])["name"])
    return names


def fit_cpu(data: dict[str, Any], refine: bool = True, iters: int = 15) -> CpuFit:
    """Fit the CPU-DRAM parameters to :func:`~simrec.calibrate.bench_cpu.run_cpu_benchmarks`
    output (see the module docstring)."""
    info = data["machine"]
    ms = data["measurements"]
    by = _by_name(ms)
    nthr = int(data["threads"])
    freq = float(info["cpu_mhz"]) * 1e6 or 2.0e9
    fpc = float(info["flops_per_cycle"])
    seq = by.get(f"seq_read_t{nthr}")
    if seq is None:
        raise SimrecError(
            f"no seq_read_t{nthr} measurement", where="calibration data", fix="re-run calibrate"
        )
    chases = sorted(
        (m for m in ms if m["name"].startswith("chase_")), key=lambda m: m["params"]["bytes"]
    )
    latency = chases[-1]["median_s"] / chases[-1]["work"] if chases else 100e-9
    bags, gathers = _cpu_resid_points(data)
    # compute part: cycles per lookup vs dim on L2-resident (cache-bound) bags
    l2 = [(w, t) for w, t in bags if w.table_bytes <= info["caches"].get("L2", 2**20)]
    if len(l2) >= 2:
        d = np.array([w.dim for w, _ in l2], dtype=np.float64)
        c = np.array([t * nthr * freq / w.lookups for w, t in l2])
        slope, icpt = np.polyfit(d, c, 1)
    else:
        slope, icpt = 1.0 / (fpc * 0.25), 20.0
    lookup_cycles = float(max(icpt, 0.1))
    pool_eff = float(np.clip(1.0 / (max(slope, 1e-9) * fpc), 1e-4, 1.0))
    # DRAM part: streaming rate and activate (random-row) rate
    data_rate = seq["rate"] / 8.0
    g64 = next((m for m in gathers if m["params"]["row_bytes"] == 64), None)
    tfaw = 4.0 / g64["rate"] if g64 else 4 * 64 / seq["rate"] * 4
    sg = next((m for m in ms if m["name"].startswith("sgemm_")), None)
    peak = nthr * freq * fpc
    mlp_eff = float(np.clip(sg["rate"] / peak, 1e-4, 1.0)) if sg else 0.5
    fit = CpuFit(
        cores=nthr,
        freq_hz=freq,
        flops_per_cycle=fpc,
        simd_width_bits=int(info["simd_width_bits"]),
        llc_bytes=float(max(info["caches"].values() or [32 * 2**20])),
        memory_bytes=float(info["memory_bytes"] or 2**34),
        lookup_cycles=lookup_cycles,
        pool_efficiency=pool_eff,
        mlp_efficiency=mlp_eff,
        data_rate=float(data_rate),
        tFAW_s=float(tfaw),
        latency_s=float(latency),
    )
    fit.initial = {
        "lookup_cycles": lookup_cycles,
        "pool_efficiency": pool_eff,
        "data_rate": float(data_rate),
        "tFAW_s": float(tfaw),
    }
    cache: dict[str, Any] = {}

    def with_x(x: np.ndarray) -> CpuFit:
        g = CpuFit(**{**fit.__dict__, "initial": {}, "residuals": []})
        g.lookup_cycles = float(math.exp(x[0]))
        g.pool_efficiency = float(min(1.0, math.exp(x[1])))
        g.data_rate = float(math.exp(x[2]))
        g.tFAW_s = float(math.exp(x[3]))
        return g

    def points(g: CpuFit) -> list[tuple[str, str, float, float]]:
        out = []
        for w, t in bags:
            out.append((w.name, "embedding_bag", predict_cpu(g, w, cache), t))
        for m in gathers:
            p = m["params"]
            rows = p["table_bytes"] // p["row_bytes"]
            out.append(
                (
                    m["name"],
                    "gather",
                    predict_cpu_gather(g, p["row_bytes"], rows, m["work"]),
                    m["median_s"],
                )
            )
        return out

    def resid(x: np.ndarray) -> np.ndarray:
        return np.array([math.log(p / t) for _, _, p, t in points(with_x(x))])

    x0 = np.log([lookup_cycles, pool_eff, data_rate, tfaw])
    if refine and bags:
        x, _ = levenberg_marquardt(
            resid,
            x0,
            iters=iters,
            step=1e-2,
            lo=[math.log(0.1), math.log(1e-4), x0[2] - 5, x0[3] - 5],
            hi=[math.log(1e5), 0.0, x0[2] + 5, x0[3] + 5],
        )
        fit = with_x(x) if float(np.sum(resid(x) ** 2)) <= float(np.sum(resid(x0) ** 2)) else fit
        fit.initial = {
            "lookup_cycles": lookup_cycles,
            "pool_efficiency": pool_eff,
            "data_rate": float(data_rate),
            "tFAW_s": float(tfaw),
        }
    res = []
    for name, kind, p, t in points(fit):
        res.append(
            {
                "name": name,
                "kind": kind,
                "measured_s": t,
                "predicted_s": p,
                "residual": p / t - 1,
                "in_fit": True,
            }
        )
    # the streaming bandwidth, reported (not in the objective: the data rate is set from it)
    res.append(
        {
            "name": seq["name"],
            "kind": "seq_read",
            "measured_s": seq["median_s"],
            "predicted_s": seq["work"] / fit.stream_Bps,
            "residual": seq["rate"] / fit.stream_Bps - 1,
            "in_fit": False,
        }
    )
    fit.residuals = res
    return fit


# ------------------------------------------------------------------------------------ GPU
@dataclass
class GpuFit:
    """Fitted single-GPU parameters and residuals."""

    gpu_name: str
    kernel_launch_s: float
    gather_efficiency: list[tuple[int, float]]
    mlp_efficiency: float
    pcie_efficiency: float
    hbm_peak_Bps: float = H100_HBM_PEAK
    residuals: list[dict[str, Any]] = field(default_factory=list)

    def gather_time_s(self, lookups: float, row_bytes: float) -> float:
        """The GPU component's gather formula with these parameters."""
        xs = np.log2([r for r, _ in self.gather_efficiency])
        ys = [e for _, e in self.gather_efficiency]
        eff = float(np.interp(math.log2(max(row_bytes, 1.0)), xs, ys))
        return self.kernel_launch_s + lookups * row_bytes / (eff * self.hbm_peak_Bps)


def fit_gpu(probe: dict[str, Any], hbm_peak_Bps: float = H100_HBM_PEAK) -> GpuFit:
    """Fit launch overhead and gather efficiency per row size to the probe's calibration runs."""
    pts = probe["calibration"]
    if not pts:
        raise SimrecError(
            "the probe file has no calibration runs",
            where="calibration",
            fix="run python3 -m simrec.calibrate.gpu_probe again",
        )
    wl = [Workload.from_dict(p["workload"]) for p in pts]
    t = np.array([p["median_s"] for p in pts])
    sizes = sorted({w.row_bytes for w in wl})
    # linear start: t = a + sum_s [rb == s] * bytes / bw_s (weighted by 1/t: relative error)
    x_lin = np.column_stack(
        [np.ones(len(t))]
        + [np.array([w.lookups * w.row_bytes * (w.row_bytes == s) for w in wl]) for s in sizes]
    )
    coef, *_ = np.linalg.lstsq(x_lin / t[:, None], np.ones(len(t)), rcond=None)
    a0 = max(float(coef[0]), 1e-7)
    eff0 = [float(np.clip(1.0 / (c * hbm_peak_Bps), 1e-3, 1.0)) if c > 0 else 0.5 for c in coef[1:]]

    def make(x: np.ndarray) -> GpuFit:
        return GpuFit(
            gpu_name=str(probe["machine"].get("gpu_name", "gpu")),
            kernel_launch_s=float(math.exp(x[0])),
            gather_efficiency=[
                (s, float(min(1.0, math.exp(v)))) for s, v in zip(sizes, x[1:], strict=True)
            ],
            mlp_efficiency=1.0,
            pcie_efficiency=1.0,
            hbm_peak_Bps=hbm_peak_Bps,
        )

    def resid(x: np.ndarray) -> np.ndarray:
        g = make(x)
        return np.log([g.gather_time_s(w.lookups, w.row_bytes) for w in wl]) - np.log(t)

    x0 = np.log([a0, *eff0])
    x, _ = levenberg_marquardt(
        resid,
        x0,
        iters=60,
        step=1e-4,
        lo=[math.log(1e-7)] + [math.log(1e-3)] * len(sizes),
        hi=[math.log(1e-3)] + [0.0] * len(sizes),
    )
    g = make(x)
    micro = probe.get("micro", {})
    mm = micro.get("matmul")
    if mm and str(mm.get("dtype", "")).endswith("bfloat16"):
        g.mlp_efficiency = float(np.clip(mm["TFLOPs"] * 1e12 / H100_BF16_PEAK, 1e-3, 1.0))
    else:
        g.mlp_efficiency = 0.6
    h2d = micro.get("h2d_pinned")
    g.pcie_efficiency = float(np.clip(h2d["GBps"] * 1e9 / PCIE5_X16_RAW, 1e-3, 1.0)) if h2d else 0.8
    g.residuals = [
        {
            "name": w.name,
            "kind": "embedding_bag",
            "measured_s": float(tt),
            "predicted_s": g.gather_time_s(w.lookups, w.row_bytes),
            "residual": g.gather_time_s(w.lookups, w.row_bytes) / float(tt) - 1,
            "in_fit": True,
        }
        for w, tt in zip(wl, t, strict=True)
    ]
    return g


def gpu_system(hw: Any, gpu: str = "gpu0") -> Any:
    """A one-GPU :class:`~simrec.sim.systems.multi_gpu.MultiGpuSystem` from GPU ``gpu`` of ``hw``
    (its parameters, its PCIe link; a one-member network, so no all-to-all)."""
    from simrec.sim.components.network import NetDim, NetworkParams
    from simrec.sim.systems.multi_gpu import MultiGpuSystem

    links = [n for n, lk in hw.links.items() if lk.kind == "pcie" and gpu in (lk.endpoints or [])]
    pcie = [hw.params(links[0])] if links else []
    if not pcie:
        from simrec.sim.components.pcie import PcieParams

        pcie = [PcieParams(generation=5, lanes=16)]
    net = NetworkParams(dims=(NetDim(npus=1, bandwidth_Bps=1e12, latency_s=0.0),), name="none")
    return MultiGpuSystem(
        [hw.gpu_params(gpu)],
        net,
        pcie,
        host_capacity_bytes=1e12,
        gpu_names=[gpu],
        name=f"{hw.name}:{gpu}",
    )


def predict_gpu(hw: Any, w: Workload, cache: dict[str, Any] | None = None) -> float:
    """Multi-GPU model time per batch (s) of ``w`` on one GPU of ``hw`` (HBM-resident table)."""
    return predict_system(gpu_system(hw), w, cache)
