"""GPU measurements for calibration and validation, self-contained (torch + numpy only).

Run on the GPU machine::

    python3 -m simrec.calibrate.gpu_probe --out probe.json [--quick]

It measures, with CUDA events (each point: ``reps`` repetitions of ``iters`` back-to-back calls,
after a warm-up; the per-call mean of every repetition is recorded):

* the GPU (name, SM count, L2 size, memory, compute capability, nvidia-smi clocks and driver);
* device-to-device copy and read (``sum``) bandwidth of HBM, the read bandwidth of an
  L2-resident buffer (``sum`` over 8 MiB); pinned host-to-device copy bandwidth;
* the per-call time of tiny kernels (launch overhead) and of a one-bag ``embedding_bag``;
* a bf16 8192^3 matrix product (MLP efficiency);
* random row gathers (``index_select``) of 64/256/512 B rows;
* ``torch.nn.functional.embedding_bag`` (sum, fp32) on the calibration points and on the held-out
  workloads of :mod:`simrec.calibrate.heldout` (same seeded indices as every other machine).

It imports nothing from simrec but :mod:`simrec.calibrate.heldout` (numpy only), so it runs where
simrec's other dependencies are not installed. Fitting and the preset are done by
``simrec calibrate --device cuda --from-json probe.json`` on any machine.

Run time on an H100/H200: about 2-3 minutes (most of it generating indices on the host).
``--device cpu --quick`` runs the same script on torch's CPU backend with small sizes (to test the
script where no GPU is; the full sizes need tens of GB).

Exit status 2 with a message when torch is missing or no GPU is visible.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

from simrec.calibrate.heldout import (
    Workload,
    gpu_calibration,
    gpu_crosscheck,
    gpu_heldout,
    make_batch,
    zipf_cdf,
)

__all__ = ["probe", "main", "gpu_available"]


def gpu_available() -> tuple[bool, str]:
    """``(True, name)`` when torch sees a CUDA GPU, else ``(False, why)``."""
    try:
        import torch
    except ImportError:
        return False, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return False, f"PyTorch {torch.__version__} sees no CUDA GPU"
    return True, torch.cuda.get_device_name(0)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _smi() -> dict[str, str]:
    q = (
        "name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,"
        "clocks.sm,clocks.mem,temperature.gpu"
    )
    try:
        r = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        vals = [v.strip() for v in r.stdout.strip().splitlines()[0].split(",")]
        return dict(zip(q.split(","), vals, strict=False))
    except Exception as e:  # noqa: BLE001 - best effort
        return {"error": str(e)}


class _Timer:
    """Per-call time of ``fn(i)`` over ``iters`` calls, ``reps`` times (CUDA events or wall)."""

    def __init__(self, torch: Any, device: str):
        self.torch = torch
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def once(self, fn: Any, iters: int) -> float:
        if self.cuda:
            a = self.torch.cuda.Event(enable_timing=True)
            b = self.torch.cuda.Event(enable_timing=True)
            a.record()
            for i in range(iters):
                fn(i)
            b.record()
            b.synchronize()
            return a.elapsed_time(b) / 1e3 / iters
        t0 = time.perf_counter()
        for i in range(iters):
            fn(i)
        return (time.perf_counter() - t0) / iters

    def measure(
        self, fn: Any, reps: int = 5, target_s: float = 0.02, max_iters: int = 200
    ) -> dict[str, Any]:
        for i in range(3):
            fn(i)
        self.sync()
        t1 = self.once(fn, 3)
        iters = int(min(max_iters, max(3, math.ceil(target_s / max(t1, 1e-7)))))
        times = [self.once(fn, iters) for _ in range(reps)]
        med = float(np.median(times))
        return {
            "times_s": times,
            "median_s": med,
            "spread": float((max(times) - min(times)) / med) if med > 0 else 0.0,
            "iters": iters,
        }


def _embedding_points(
    torch: Any, timer: _Timer, device: str, wls: list[Workload], reps: int, log: Any
) -> list[dict[str, Any]]:
    F = torch.nn.functional
    out = []
    for w in wls:
        t0 = time.perf_counter()
        table = torch.rand(w.rows, w.dim, device=device, dtype=torch.float32)
        cdf = zipf_cdf(w.rows, w.alpha) if w.dist == "zipf" else None
        batches = []
        uniq = []
        for i in range(w.nbatches):
            idx, offs = make_batch(w, i, cdf)
            uniq.append(int(np.unique(idx).size))
            batches.append((torch.from_numpy(idx).to(device), torch.from_numpy(offs).to(device)))
        nb = len(batches)

        def call(i: int, batches: list[Any] = batches, table: Any = table, nb: int = nb) -> Any:
            idx, offs = batches[i % nb]
            return F.embedding_bag(idx, table, offs, mode="sum", include_last_offset=True)

        m = timer.measure(call, reps=reps)
        m.update(workload=w.to_dict(), unique_rows=uniq, setup_s=time.perf_counter() - t0)
        out.append(m)
        log(
            f"{w.name}: {m['median_s'] * 1e3:.4f} ms/batch (spread {m['spread']:.1%}, "
            f"{w.lookups * w.row_bytes / m['median_s'] / 1e9:.0f} GB/s of rows)"
        )
        del table, batches
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return out


def probe(device: str = "cuda", quick: bool = False, reps: int = 5, log: Any = print) -> dict:
    """Run every GPU measurement; returns the JSON-able record (see the module docstring)."""
    import torch

    t_start = time.perf_counter()
    timer = _Timer(torch, device)
    dev = torch.device(device)
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(dev)
        info.update(
            gpu_name=p.name,
            sms=p.multi_processor_count,
            gpu_memory_bytes=int(p.total_memory),
            l2_bytes=int(getattr(p, "L2_cache_size", 0)),
            cuda=torch.version.cuda,
            capability=f"{p.major}.{p.minor}",
            nvidia_smi=_smi(),
        )
    micro: dict[str, Any] = {}
    big = (64 if quick else 2048) * 2**20
    x = torch.empty(big // 4, dtype=torch.float32, device=dev).fill_(1.0)
    y = torch.empty_like(x)
    m = timer.measure(lambda i, x=x, y=y: y.copy_(x), reps=reps)
    m["bytes"] = 2 * big
    m["GBps_read_plus_write"] = 2 * big / m["median_s"] / 1e9
    micro["d2d_copy"] = m
    info["hbm_copy_GBps_read_plus_write"] = m["GBps_read_plus_write"]
    m = timer.measure(lambda i, x=x: x.sum(), reps=reps)
    m["bytes"] = big
    m["GBps_read"] = big / m["median_s"] / 1e9
    micro["read_sum"] = m
    del x, y
    small = 8 * 2**20  # L2-resident on H100 (50 MB) and H200 (60 MB)
    xs = torch.empty(small // 4, dtype=torch.float32, device=dev).fill_(1.0)
    m = timer.measure(lambda i, xs=xs: xs.sum(), reps=reps, max_iters=2000)
    m["bytes"] = small
    m["GBps_read"] = small / m["median_s"] / 1e9
    micro["l2_read_sum"] = m
    del xs
    if device.startswith("cuda"):
        nh = (64 if quick else 1024) * 2**20
        h = torch.empty(nh, dtype=torch.uint8).pin_memory()
        d = torch.empty(nh, dtype=torch.uint8, device=dev)
        m = timer.measure(lambda i: d.copy_(h, non_blocking=True), reps=reps, max_iters=20)
        m["bytes"] = nh
        m["GBps"] = nh / m["median_s"] / 1e9
        micro["h2d_pinned"] = m
        del h, d
    s = torch.zeros(1, device=dev)
    micro["tiny_kernel"] = timer.measure(lambda i: s.add_(1.0), reps=reps, max_iters=2000)
    tab = torch.rand(1000, 16, device=dev)
    i1 = torch.zeros(1, dtype=torch.int64, device=dev)
    o1 = torch.tensor([0, 1], dtype=torch.int64, device=dev)
    F = torch.nn.functional
    micro["tiny_embedding_bag"] = timer.measure(
        lambda i: F.embedding_bag(i1, tab, o1, mode="sum", include_last_offset=True),
        reps=reps,
        max_iters=2000,
    )
    n = 2048 if quick else 8192
    dt = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a = torch.randn(n, n, device=dev, dtype=dt)
    b = torch.randn(n, n, device=dev, dtype=dt)
    m = timer.measure(lambda i, a=a, b=b: a @ b, reps=reps, max_iters=50)
    m["n"] = n
    m["dtype"] = str(dt)
    m["TFLOPs"] = 2 * n**3 / m["median_s"] / 1e12
    micro["matmul"] = m
    del a, b
    gathers = {}
    rows_total = (1 if quick else 16) * 2**28  # bytes of the gathered table
    for rb in (64, 256, 512):
        rows = rows_total // rb
        t = torch.empty(rows, rb // 4, device=dev).fill_(0.5)
        nidx = (1 if quick else 4) * 2**20
        idxs = [
            torch.from_numpy(np.random.default_rng([7, rb, k]).integers(0, rows, nidx)).to(dev)
            for k in range(2)
        ]
        m = timer.measure(lambda i, t=t, idxs=idxs: t.index_select(0, idxs[i % 2]), reps=reps)
        m.update(row_bytes=rb, rows=rows, lookups=nidx)
        m["GBps"] = nidx * rb / m["median_s"] / 1e9
        gathers[str(rb)] = m
        log(f"gather {rb} B rows: {m['GBps']:.0f} GB/s")
        del t, idxs
    micro["gather"] = gathers
    log(
        f"d2d {micro['d2d_copy']['GBps_read_plus_write']:.0f} GB/s, "
        f"L2 read {micro['l2_read_sum']['GBps_read']:.0f} GB/s, "
        f"matmul {micro['matmul']['TFLOPs']:.0f} TFLOP/s, "
        f"tiny embedding_bag {micro['tiny_embedding_bag']['median_s'] * 1e6:.1f} us"
    )
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    calib = _embedding_points(torch, timer, device, gpu_calibration(quick), reps, log)
    held = _embedding_points(torch, timer, device, gpu_heldout(quick), reps, log)
    cross = [] if quick else _embedding_points(torch, timer, device, gpu_crosscheck(), reps, log)
    return {
        "kind": "simrec-gpu-probe",
        "version": 2,
        "quick": quick,
        "machine": info,
        "micro": micro,
        "calibration": calib,
        "heldout": held,
        "crosscheck": cross,
        "wall_s": time.perf_counter() - t_start,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--quick", action="store_true", help="small sizes (a pipeline check)")
    ap.add_argument("--device", default="cuda", help="torch device (cpu only to test the script)")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    if a.device.startswith("cuda"):
        ok, why = gpu_available()
        if not ok:
            print(
                f"error: {why}. Fix: install a CUDA build of PyTorch (pip install torch) on a "
                "machine with an NVIDIA GPU and driver, or calibrate the CPU with --device cpu.",
                file=sys.stderr,
            )
            return 2
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("error: PyTorch is not installed. Fix: pip install torch.", file=sys.stderr)
            return 2
    rec = probe(a.device, a.quick, a.reps, log=lambda s: print(s, flush=True))
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({rec['wall_s']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
