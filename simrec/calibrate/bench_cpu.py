"""CPU microbenchmarks for calibration: bandwidth, latency, gathers, embedding-bag, GEMM.

Every benchmark is timed ``reps`` times after one warm-up (which also faults in the pages) and is
returned as a :class:`Measurement` holding every repetition, the median and the spread
``(max - min) / median``; the fit uses medians, the noise check uses spreads.

* ``seq_read`` / ``seq_copy``: ``np.add.reduce`` / ``np.copyto`` over a buffer far larger than the
  LLC, split in equal contiguous chunks over ``threads`` Python threads (numpy releases the GIL).
* ``chase``: dependent loads over one random cyclic permutation of 64 B-strided slots (a compiled
  numba loop; each load's address is the previous load's value), ns per load at several sizes.
* ``gather``: ``np.take(table, idx, axis=0, out=...)`` of uniformly random rows of 64/256/512 B from
  a table far larger than the LLC, at 1..``threads`` threads (rows/s).
* ``embedding_bag``: ``torch.nn.functional.embedding_bag`` (torch's own intra-op threads) or
  simrec's numba embedding-bag (:func:`simrec.functional.embedding_bag.embedding_bag`, nogil) split
  over bags on Python threads; sum pooling, fp32.
* ``sgemm``: ``np.matmul`` of float32 square matrices (the BLAS's own threads), FLOP/s.

Page backing (since 2026-12-03): every table and buffer comes from :func:`page_array`, an
anonymous mapping advised onto transparent huge pages (``pages="huge"``, the default) or kept off
them (``pages="4k"``), and each measurement records the fraction of its buffer the kernel put on
huge pages (``params["huge_fraction"]``, from ``/proc/self/smaps``). Before, the buffers were
numpy's, which numpy itself advises onto huge pages when it can, so how much of a table was on
huge pages was up to the kernel and not recorded; on the 16-vCPU calibration VM a page walk of a
4 KiB page costs 17-121 ns per load (``benchmarks/cpu_pages.py``), so that was an uncontrolled
variable. The model has no address translation: it describes the huge-page case.

What it leaves out: hardware counters (no perf in VMs), NUMA placement control, 1 GiB pages, and
frequency pinning; a loaded or throttling machine shows up as spread, which the caller checks.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import mmap
import os
import platform
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from simrec.calibrate.heldout import Workload, cycled_batches, machine_llc_bytes, make_batches

__all__ = [
    "Measurement",
    "machine_info",
    "torch_available",
    "measure",
    "seq_read",
    "seq_copy",
    "chase",
    "gather",
    "sgemm",
    "EmbeddingRunner",
    "measure_workload",
    "run_cpu_benchmarks",
    "min_rep_s",
    "page_array",
    "huge_fraction",
    "PAGES",
]

MiB = 2**20
#: shortest timed repetition of a full run, seconds (shorter calls are repeated back to back and
#: averaged). 0.05 s until 2026-12-03; raised to 0.2 s, before the next device measurement, because
#: the five probes of that day were refused by the noise check mostly for one slow repetition in
#: five of 1.2-1.6x on 50 ms repetitions (a 10-30 ms stall): a 0.2 s repetition dilutes it 4x
MIN_REP_S = 0.2
#: repetitions per benchmark of a full run (5 until 2026-12-03: with nine, the noise check's
#: 93.75 % interval for the median is (x_(2), x_(8)), so one stalled repetition no longer decides it)
CPU_REPS = 9
#: repetitions per benchmark of a ``quick`` run
CPU_QUICK_REPS = 3
#: shortest timed repetition of a ``quick`` run (CI's pipeline check), seconds
QUICK_MIN_REP_S = 0.05
#: untimed embedding-bag activity when a runner starts, seconds
WARMUP_S = 0.5


@dataclass
class Measurement:
    """One benchmark point: ``times_s`` per repetition, ``work`` units per repetition (bytes,
    rows, loads, FLOPs or batches, named by ``unit``), ``params`` saying what was run."""

    name: str
    unit: str
    work: float
    times_s: list[float]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return float(np.median(self.times_s))

    @property
    def spread(self) -> float:
        """``(max - min) / median`` of the repetitions."""
        m = self.median_s
        return float((max(self.times_s) - min(self.times_s)) / m) if m > 0 else 0.0

    @property
    def rate(self) -> float:
        """``work / median time`` (units per second)."""
        return self.work / self.median_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(median_s=self.median_s, spread=self.spread, rate=self.rate)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        return cls(d["name"], d["unit"], d["work"], list(d["times_s"]), dict(d.get("params", {})))


#: page backings :func:`page_array` offers
PAGES = ("huge", "4k")


def page_array(shape: tuple[int, ...] | int, dtype: Any, pages: str = "huge") -> np.ndarray:
    """A zero-filled array on an anonymous mapping advised onto transparent huge pages
    (``pages="huge"``) or off them (``"4k"``); the array keeps the mapping alive. Where the
    platform has no ``madvise`` (not Linux) it is a plain ``np.zeros`` and
    :func:`huge_fraction` says ``None``."""
    if pages not in PAGES:
        raise ValueError(f"pages must be one of {PAGES}, not {pages!r}")
    shp = (shape,) if isinstance(shape, int) else tuple(shape)
    dt = np.dtype(dtype)
    n = int(np.prod(shp)) if shp else 1
    nbytes = max(1, n * dt.itemsize)
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(shp, dtype=dt)
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    # a kernel without THP refuses the advice (EINVAL): the buffer is then on 4 KiB pages, which
    # the measurement's huge_fraction records
    with contextlib.suppress(OSError):
        m.madvise(mmap.MADV_HUGEPAGE if pages == "huge" else mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(m, dtype=dt, count=n).reshape(shp)


def huge_fraction(a: np.ndarray) -> float | None:
    """Fraction of ``a``'s bytes on huge pages once touched: ``AnonHugePages / Size`` summed over
    the entries of ``/proc/self/smaps`` that overlap it (an allocator's advice can split one
    buffer into several); ``None`` where that file is not readable or nothing overlaps."""
    lo_a = int(a.__array_interface__["data"][0])
    hi_a = lo_a + max(1, int(a.nbytes))
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return None
    size = huge = 0
    inside = False
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and not head.endswith(":"):
            lo, _, hi = head.partition("-")
            try:
                inside = int(lo, 16) < hi_a and lo_a < int(hi, 16)
            except ValueError:
                inside = False
        elif inside and line.startswith("Size:"):
            size += int(line.split()[1])
        elif inside and line.startswith("AnonHugePages:"):
            huge += int(line.split()[1])
    if not size:
        return None
    return min(1.0, huge / size)


def _backing(a: np.ndarray, pages: str) -> dict[str, Any]:
    """A measurement's page-backing parameters: the policy asked and what the kernel gave."""
    return {"pages": pages, "huge_fraction": huge_fraction(a)}


def min_rep_s(quick: bool) -> float:
    """Shortest timed repetition, seconds: :data:`MIN_REP_S`, or :data:`QUICK_MIN_REP_S` when
    ``quick``."""
    return QUICK_MIN_REP_S if quick else MIN_REP_S


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _cache_sizes() -> dict[str, int]:
    """Per-level cache size in bytes (the largest instance per level) from sysfs."""
    out: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for d in sorted(base.glob("index*")) if base.exists() else []:
        level = _read(str(d / "level")).strip()
        typ = _read(str(d / "type")).strip()
        size = _read(str(d / "size")).strip()
        if not level or typ == "Instruction" or not size:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1], 1)
        val = int(size.rstrip("KMG")) * mult
        out[f"L{level}"] = max(out.get(f"L{level}", 0), val)
    return out


def _topology() -> dict[str, Any]:
    """SMT, NUMA and LLC sharing from sysfs (empty values where sysfs does not say)."""
    cpu0 = Path("/sys/devices/system/cpu/cpu0")
    sib = _read(str(cpu0 / "topology" / "thread_siblings_list")).strip()
    out: dict[str, Any] = {
        "threads_per_core": _count_list(sib) if sib else None,
        "numa_nodes": len(list(Path("/sys/devices/system/node").glob("node[0-9]*"))) or None,
        "governor": _read(str(cpu0 / "cpufreq" / "scaling_governor")).strip() or None,
        "cpu_max_mhz": None,
        "llc_shared_cpus": None,
        "logical_cpus": os.cpu_count(),
    }
    mx = _read(str(cpu0 / "cpufreq" / "cpuinfo_max_freq")).strip()
    if mx.isdigit():
        out["cpu_max_mhz"] = int(mx) / 1000.0
    best = -1
    base = cpu0 / "cache"
    for d in sorted(base.glob("index*")) if base.exists() else []:
        lv = _read(str(d / "level")).strip()
        if lv.isdigit() and int(lv) > best:
            best = int(lv)
            shared = _read(str(d / "shared_cpu_list")).strip()
            out["llc_shared_cpus"] = _count_list(shared) if shared else None
    return out


def _count_list(s: str) -> int:
    """Number of CPUs in a sysfs CPU list such as ``0-3,8-11``."""
    n = 0
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            n += int(b) - int(a) + 1
        elif part.strip():
            n += 1
    return n


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def machine_info() -> dict[str, Any]:
    """CPU model, cores, clock, SIMD flags, caches, memory, load average, software versions, date."""
    cpuinfo = _read("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip(), v.strip())
    flags = set(fields.get("flags", "").split())
    mem = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    vendor = fields.get("vendor_id", "")
    family = int(fields.get("cpu family", "0") or 0)
    # peak FP32 FLOP/cycle/core: an [assumption] from the ISA flags and vendor (only the product
    # with the fitted efficiency enters the model, so this choice does not change predictions)
    if "avx512f" in flags and vendor == "GenuineIntel":
        fpc = 64.0
    elif "avx2" in flags and "fma" in flags:
        fpc = 32.0  # 2 x 256-bit FMA; AMD Zen 4 runs AVX-512 on 256-bit units (also 32)
    elif "avx" in flags:
        fpc = 16.0
    else:
        fpc = 8.0
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": platform.node(),
        "cpu_model": fields.get("model name", platform.processor() or "unknown"),
        "vendor": vendor,
        "cpu_family": family,
        "cores": _cores(),
        "cpu_mhz": float(fields.get("cpu MHz", "0") or 0),
        "flops_per_cycle": fpc,
        "simd_width_bits": 512 if "avx512f" in flags else 256 if "avx" in flags else 128,
        "flags_simd": sorted(f for f in flags if f.startswith(("avx", "fma", "sse4"))),
        "caches": _cache_sizes(),
        "memory_bytes": mem,
        "hypervisor": "hypervisor" in flags,
        "loadavg": [float(x) for x in _read("/proc/loadavg").split()[:3]] or [0.0, 0.0, 0.0],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "model_id": {k: fields.get(k) for k in ("model", "stepping", "microcode")},
        # page size and TLB reach (for analysing random-row costs; not used by the fit)
        "tlb": fields.get("TLB size"),
        "thp": _read("/sys/kernel/mm/transparent_hugepage/enabled").strip() or None,
        "page_bytes": os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None,
    }
    info.update(_topology())
    if torch_available():
        import torch

        info["torch"] = torch.__version__
    return info


def measure(
    name: str,
    unit: str,
    work: float,
    fn: Callable[[], Any],
    reps: int,
    params: dict[str, Any] | None = None,
    warmup: int = 1,
    min_time_s: float = MIN_REP_S,
) -> Measurement:
    """Time ``fn()`` ``reps`` times after ``warmup`` untimed calls.

    A repetition that would last less than ``min_time_s`` calls ``fn`` back to back ``inner``
    times (sized from the warm-up calls) and records the mean time per call: a
    sub-millisecond embedding-bag call timed alone measures the scheduler (thread wake-ups,
    one descheduled thread) as much as the kernel. ``params["inner"]`` records the count.
    """
    # warm up with at least ``warmup`` calls and, when repetitions are batched, for at least
    # ``min_time_s`` (a first call pays thread-pool start and page faults); the per-call time
    # that sizes ``inner`` is the median of the warm-up calls after the first
    warm: list[float] = []
    t_start = time.perf_counter()
    while len(warm) < warmup or (
        min_time_s > 0 and time.perf_counter() - t_start < min_time_s and len(warm) < 10_000
    ):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    t_once = float(np.median(warm[1:] if len(warm) > 1 else warm)) if warm else 0.0
    inner = 1
    if min_time_s > 0 and 0 < t_once < min_time_s:
        inner = min(10_000, math.ceil(min_time_s / t_once))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return Measurement(name, unit, float(work), times, {**dict(params or {}), "inner": inner})


def _chunks(n: int, k: int) -> list[slice]:
    return [slice(i * n // k, (i + 1) * n // k) for i in range(k)]


@contextlib.contextmanager
def _pool(threads: int) -> Iterator[ThreadPoolExecutor]:
    ex = ThreadPoolExecutor(max_workers=threads)
    try:
        yield ex
    finally:
        ex.shutdown()


def seq_read(
    nbytes: int, threads: int, reps: int, min_time_s: float = MIN_REP_S, pages: str = "huge"
) -> Measurement:
    """Sequential read bandwidth (bytes/s) of ``np.add.reduce`` over ``nbytes`` on ``threads``."""
    a = page_array(nbytes // 4, np.float32, pages)
    a.fill(1.0)
    sl = _chunks(a.size, threads)
    with _pool(threads) as ex:
        m = measure(
            f"seq_read_t{threads}",
            "bytes",
            a.nbytes,
            lambda: list(ex.map(lambda s: np.add.reduce(a[s]), sl)),
            reps,
            {"bytes": a.nbytes, "threads": threads, **_backing(a, pages)},
            min_time_s=min_time_s,
        )
    return m


def seq_copy(
    nbytes: int, threads: int, reps: int, min_time_s: float = MIN_REP_S, pages: str = "huge"
) -> Measurement:
    """Copy bandwidth (bytes read + written per second) of ``np.copyto`` on ``threads``."""
    a = page_array(nbytes // 4, np.float32, pages)
    a.fill(1.0)
    b = page_array(a.size, np.float32, pages)
    b.fill(0.0)
    sl = _chunks(a.size, threads)
    with _pool(threads) as ex:
        m = measure(
            f"seq_copy_t{threads}",
            "bytes",
            2 * a.nbytes,
            lambda: list(ex.map(lambda s: np.copyto(b[s], a[s]), sl)),
            reps,
            {"bytes": a.nbytes, "threads": threads, **_backing(a, pages)},
            min_time_s=min_time_s,
        )
    return m


@numba.njit(cache=True, nogil=True)
def _chase_kernel(nxt: np.ndarray, steps: int) -> int:  # pragma: no cover - compiled
    p = 0
    for _ in range(steps):
        p = nxt[p]
    return p


def chase(
    nbytes: int,
    steps: int,
    reps: int,
    seed: int = 0,
    min_time_s: float = MIN_REP_S,
    pages: str = "huge",
    name: str | None = None,
) -> Measurement:
    """Dependent-load latency (s per load) over a random cycle through ``nbytes`` of 64 B slots."""
    slots = max(2, nbytes // 64)
    stride = 8  # int64 elements per 64 B
    perm = np.random.default_rng(seed).permutation(slots)
    nxt = page_array(slots * stride, np.int64, pages)
    # one cycle: perm[0] -> perm[1] -> ... -> perm[-1] -> perm[0], each slot at 64 B spacing
    nxt[perm * stride] = np.roll(perm, -1) * stride
    _chase_kernel(nxt, 10)
    return measure(
        name or f"chase_{nbytes}",
        "loads",
        steps,
        lambda: _chase_kernel(nxt, steps),
        reps,
        {"bytes": slots * 64, "steps": steps, "seed": seed, **_backing(nxt, pages)},
        min_time_s=min_time_s,
    )


def gather(
    row_bytes: int,
    threads: int,
    table_bytes: int,
    lookups: int,
    reps: int,
    seed: int = 0,
    min_time_s: float = MIN_REP_S,
    pages: str = "huge",
) -> Measurement:
    """Random row gather throughput (rows/s) with ``np.take`` on ``threads`` threads."""
    dim = row_bytes // 4
    rows = table_bytes // row_bytes
    table = page_array((rows, dim), np.float32, pages)
    table.fill(0.5)
    idx = np.random.default_rng([seed, row_bytes]).integers(0, rows, lookups, dtype=np.int64)
    out = page_array((lookups, dim), np.float32, pages)
    sl = _chunks(lookups, threads)
    with _pool(threads) as ex:
        return measure(
            f"gather_{row_bytes}B_t{threads}",
            "rows",
            lookups,
            lambda: list(ex.map(lambda s: np.take(table, idx[s], axis=0, out=out[s]), sl)),
            reps,
            {
                "row_bytes": row_bytes,
                "threads": threads,
                "table_bytes": rows * row_bytes,
                **_backing(table, pages),
            },
            min_time_s=min_time_s,
        )


def sgemm(n: int, reps: int, min_time_s: float = MIN_REP_S) -> Measurement:
    """float32 ``n x n`` matrix product with the BLAS's own threads (FLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    return measure(
        f"sgemm_{n}",
        "flops",
        2.0 * n**3,
        lambda: np.matmul(a, b, out=c),
        reps,
        {"n": n},
        min_time_s=min_time_s,
    )


class EmbeddingRunner:
    """Runs sum-pooled fp32 embedding-bag batches with ``impl`` (``torch`` or ``numba``) on
    ``threads`` threads."""

    def __init__(self, impl: str, threads: int):
        if impl not in ("torch", "numba"):
            raise ValueError(f"unknown embedding-bag implementation {impl!r}")
        self.impl = impl
        self.threads = threads
        if impl == "torch":
            import torch

            torch.set_num_threads(threads)
            self._torch = torch
        else:
            from simrec.functional.embedding_bag import embedding_bag

            self._bag = embedding_bag
            self._ex = ThreadPoolExecutor(max_workers=threads)
        self.warm_up()

    def warm_up(self, seconds: float = WARMUP_S) -> None:
        """Run small embedding-bag batches for ``seconds`` before anything is timed: on the
        16-core calibration VM the first ~150 ms of calls ran 100x slower than later ones
        (thread-pool start, the guest's memory and vCPUs waking), which made the first timed
        workload of a probe unusable whatever its own warm-up."""
        rng = np.random.default_rng(0)
        table = np.zeros((2048, 16), dtype=np.float32)
        idx = rng.integers(0, 2048, 4096 * 8, dtype=np.int64)
        offs = np.arange(0, idx.size + 1, 8, dtype=np.int64)
        tab = self.table(table)
        (batch,) = self.prepare(table, [(idx, offs)])
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            self.run(tab, batch)

    def prepare(self, table: np.ndarray, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
        """Convert batches to what :meth:`run` takes (torch tensors, or per-thread slices)."""
        if self.impl == "torch":
            t = self._torch
            return [(t.from_numpy(i), t.from_numpy(o)) for i, o in batches]
        out = []
        for idx, offs in batches:
            b = offs.size - 1
            parts = []
            for s in _chunks(b, self.threads):
                lo, hi = int(offs[s.start]), int(offs[s.stop])
                parts.append((idx[lo:hi], offs[s.start : s.stop + 1] - lo))
            out.append(parts)
        return out

    def table(self, table: np.ndarray) -> Any:
        return self._torch.from_numpy(table) if self.impl == "torch" else table

    def run(self, table: Any, batch: Any) -> None:
        if self.impl == "torch":
            idx, offs = batch
            self._torch.nn.functional.embedding_bag(
                idx, table, offs, mode="sum", include_last_offset=True
            )
        else:
            list(self._ex.map(lambda p: self._bag(table, p[0], p[1], "sum"), batch))

    def close(self) -> None:
        if self.impl == "numba":
            self._ex.shutdown()


def measure_workload(
    runner: EmbeddingRunner,
    w: Workload,
    reps: int,
    min_time_s: float = MIN_REP_S,
    pages: str = "huge",
) -> Measurement:
    """Embedding-bag time per batch of workload ``w`` (its ``nbatches`` batches cycled once per
    repetition, the table on ``pages``); ``params`` holds the workload, the distinct rows per
    batch and the table's page backing."""
    table = page_array((w.rows, w.dim), np.float32, pages)
    table.fill(0.01)
    raw = make_batches(w)
    uniq = [int(np.unique(i).size) for i, _ in raw]
    prepared = runner.prepare(table, raw)
    tab = runner.table(table)

    def once() -> None:
        for b in prepared:
            runner.run(tab, b)

    m = measure(
        w.name,
        "batches",
        w.nbatches,
        once,
        reps,
        {
            "workload": w.to_dict(),
            "impl": runner.impl,
            "threads": runner.threads,
            "unique": uniq,
            **_backing(table, pages),
        },
        min_time_s=min_time_s,
    )
    return m


def llc_resident_bytes(llc_bytes: float | None) -> int:
    """Table size of the LLC-resident calibration points: a quarter of the last-level cache
    (8 MiB when it is not known), at least 4 MiB so that it is beyond a core's L2."""
    llc = float(llc_bytes or 32 * MiB)
    return int(max(4 * MiB, llc / 4))


def dram_table_bytes(llc_bytes: float | None, quick: bool = False) -> int:
    """Table size of the DRAM-bound calibration points: 8 LLCs, at least 256 MiB (64 MiB
    quick)."""
    floor = (64 if quick else 256) * MiB
    return int(max(floor, 8 * float(llc_bytes or 32 * MiB)))


#: (dim, pooling, batch) of the Zipf calibration points (:func:`cpu_calibration_workloads`)
ZIPF_CALIBRATION = ((32, 16, 4096), (128, 32, 1024))


def cpu_calibration_workloads(
    quick: bool = False, llc_bytes: float | None = None, max_table_bytes: float | None = None
) -> list[Workload]:
    """Embedding-bag calibration points (sum pooling, fp32; uniform indices but for ``_zipf``).

    Three table sizes, so that every mechanism of the CPU-DRAM model is seen by some point:

    * ``_l2``: 2,048 rows (128 KiB-1 MiB, cache-resident: the pooling compute). Pooling 32 at
      batch 4,096 (per-lookup cost), pooling 2 at batch 16,384 (per-bag cost), pooling 1 at
      batch 16,384 (dim 128: the pooled output's bytes) and two batches of 256 bags (the per-call
      overhead);
    * ``_llc``: a table of a quarter of the LLC (:func:`llc_resident_bytes`), pooling 32, batch
      4,096 (hits in the last-level cache), and pooling 1 at batch 65,536 (dim 64: 16 MiB of
      output per call);
    * ``_dram``: a table of 8 LLCs, at least 256 MiB (:func:`dram_table_bytes`), pooling 32 at
      batch 4,096 and pooling 2 at batch 16,384, cycling enough batches that their rows take
      two LLCs (:func:`~simrec.calibrate.heldout.cycled_batches`: DRAM-bound once warm, also
      on machines whose LLC is as large as the table of a fixed-size point);
    * ``_llchalf`` / ``_llctwice``: dim 32, pooling 32 on a table of four LLCs, with batches
      sized so that the two batches' rows take half / twice the LLC (the effective LLC capacity).
    * ``_zipf``: Zipf-distributed indices (exponent 1.05) on the ``_dram`` table, dim 32 /
      pooling 16 / batch 4,096 and dim 128 / pooling 32 / batch 1,024 (:data:`ZIPF_CALIBRATION`),
      cycling as many batches as a uniform point of that shape: the hot rows hit in the LLC and
      the tail misses, so they tell how much of the LLC a skewed table really gets and how hits
      and misses mix. Quick: dim 32 / pooling 16 / batch 1,024, 2 batches. (Added on 2026-12-03,
      after five leases' held-out Zipf workloads were under-predicted, before any probe that
      measured them.)
    * ``_dram2``: the four ``_dram`` shapes (dims 16, 64 and 128 at pooling 32, batch 4,096;
      dim 64 at pooling 2, batch 16,384; until 2026-12-04 only the first two) on a table twice
      the ``_dram`` one's
      (16 LLCs, at least 512 MiB; capped at ``max_table_bytes``, and left out where the cap
      leaves it less than 1.5 x the ``_dram`` table): the same lookups on twice the pages, what
      tells a per-page cost (address translation, :data:`~simrec.calibrate.cpufit.TLB_ENTRIES`)
      from the DRAM's per-row one. Quick: one such point (dim 16, batch 1,024).

    Dims 16/64/128. No (dim, pooling, batch) of these is one of the held-out workloads of
    :func:`~simrec.calibrate.heldout.cpu_heldout`. (Until 2026-12-03 the ``_dram`` tables were a
    fixed 256 MiB with 2 cycled batches, and there were no pooling-1 points.)
    """
    llc = llc_resident_bytes(llc_bytes)
    cap = float(llc_bytes or 32 * MiB)
    big = dram_table_bytes(llc_bytes, quick)
    big2 = 2 * big if max_table_bytes is None else int(min(2 * big, max_table_bytes))
    twice = big2 >= 1.5 * big
    if quick:
        out = []
        for d in (16, 64, 128):
            out.append(Workload(f"cal_d{d}_l32_b1024_l2", 2048, d, 32, 1024, nbatches=2))
        out.append(Workload("cal_d64_l2_b4096_l2", 2048, 64, 2, 4096, nbatches=2))
        out.append(Workload("cal_d16_l32_b256_l2", 2048, 16, 32, 256, nbatches=2))
        out.append(Workload("cal_d64_l32_b1024_llc", llc // 256, 64, 32, 1024, nbatches=2))
        for d in (16, 64, 128):
            out.append(
                Workload(f"cal_d{d}_l32_b1024_dram", big // (4 * d), d, 32, 1024, nbatches=2)
            )
        if twice:
            out.append(Workload("cal_d16_l32_b1024_dram2", big2 // 64, 16, 32, 1024, nbatches=2))
        out.append(Workload("cal_d32_l16_b1024_zipf", big // 128, 32, 16, 1024, "zipf", nbatches=2))
        return out
    out = []
    for d in (16, 64, 128):
        out.append(Workload(f"cal_d{d}_l32_b4096_l2", 2048, d, 32, 4096, nbatches=2))
    for d in (16, 64, 128):
        out.append(Workload(f"cal_d{d}_l2_b16384_l2", 2048, d, 2, 16_384, nbatches=2))
    out.append(Workload("cal_d128_l1_b16384_l2", 2048, 128, 1, 16_384, nbatches=2))
    out.append(Workload("cal_d16_l32_b256_l2", 2048, 16, 32, 256, nbatches=2))
    out.append(Workload("cal_d128_l2_b256_l2", 2048, 128, 2, 256, nbatches=2))
    for d in (16, 64, 128):
        out.append(Workload(f"cal_d{d}_l32_b4096_llc", llc // (4 * d), d, 32, 4096, nbatches=2))
    out.append(Workload("cal_d64_l1_b65536_llc", llc // 256, 64, 1, 65_536, nbatches=2))
    for d, lp, b in ((16, 32, 4096), (64, 32, 4096), (128, 32, 4096), (64, 2, 16_384)):
        nb = cycled_batches(b * lp, 4 * d, cap, minimum=2)
        out.append(Workload(f"cal_d{d}_l{lp}_b{b}_dram", big // (4 * d), d, lp, b, nbatches=nb))
    if twice:  # every _dram point's twin on twice the table (the last two since 2026-12-04)
        for d, lp, b in ((16, 32, 4096), (64, 32, 4096), (128, 32, 4096), (64, 2, 16_384)):
            nb = cycled_batches(b * lp, 4 * d, cap, minimum=2)
            out.append(
                Workload(f"cal_d{d}_l{lp}_b{b}_dram2", big2 // (4 * d), d, lp, b, nbatches=nb)
            )
    # around the LLC: a table of 4 LLCs whose two batches' rows (dim 32, 128 B) fill half the
    # LLC and twice the LLC: they tell how much of the LLC the rows really get
    for tag, ws in (("half", 0.5), ("twice", 2.0)):
        b = max(256, int(round(ws * cap / (2 * 32 * 128))))
        out.append(
            Workload(f"cal_d32_l32_b{b}_llc{tag}", int(4 * cap) // 128, 32, 32, b, nbatches=2)
        )
    # skewed: Zipf 1.05 on the _dram table, cycling as many batches as a uniform point would
    for d, lp, b in ZIPF_CALIBRATION:
        nb = cycled_batches(b * lp, 4 * d, cap, minimum=2)
        out.append(
            Workload(f"cal_d{d}_l{lp}_b{b}_zipf", big // (4 * d), d, lp, b, "zipf", nbatches=nb)
        )
    return out


def run_cpu_benchmarks(
    quick: bool = False,
    impl: str = "torch",
    threads: int | None = None,
    reps: int | None = None,
    log: Callable[[str], None] | None = None,
    other_full: bool = False,
    pages: str = "huge",
) -> dict[str, Any]:
    """Run every CPU microbenchmark; returns ``{"machine", "impl", "threads", "quick",
    "measurements": [Measurement.to_dict()...]}``.

    The other embedding-bag implementation is measured for comparison on two calibration points at
    1 and all threads; with ``other_full`` it runs every calibration point at all threads (so that
    it, too, can be fitted: ``fit_cpu(data, impl=other)``). Every buffer is on ``pages``
    (:func:`page_array`); two pointer chases on the other backing (``pagechase_*``, at 1/16 of
    the LLC and at the largest chase size) are recorded for comparison, not fitted."""
    if pages not in PAGES:
        raise ValueError(f"pages must be one of {PAGES}, not {pages!r}")
    say = log or (lambda s: None)
    info = machine_info()
    nthr = threads or info["cores"]
    reps = reps or (CPU_QUICK_REPS if quick else CPU_REPS)
    rep_s = min_rep_s(quick)
    llc = machine_llc_bytes(info)
    # streaming, pointer-chase and gather sizes: 512 MiB, or 4 LLCs where the LLC is larger (a
    # 512 MiB chase on a 300 MiB L3 mixes LLC hits into the DRAM latency)
    big = 64 * MiB if quick else max(512 * MiB, (4 * int(llc or 0)) // MiB * MiB)
    gtab = big
    nlook = (2**18) if quick else (2**21)
    ms: list[Measurement] = []

    def add(m: Measurement) -> None:
        ms.append(m)
        say(f"{m.name}: {m.rate:.4g} {m.unit}/s (spread {m.spread:.1%})")

    thread_list = sorted({1, nthr})
    for t in thread_list:
        add(seq_read(big, t, reps, rep_s, pages))
    add(seq_copy(big, nthr, reps, rep_s, pages))
    sizes = [32 * 2**10, 1 * MiB, 16 * MiB, big] if not quick else [32 * 2**10, big]
    for s in sizes:
        add(chase(s, (2**18) if quick else (2**21), reps, min_time_s=rep_s, pages=pages))
    # the same chase on the other page backing: the translation cost (reported, not fitted)
    alt = "4k" if pages == "huge" else "huge"
    for s in sorted({max(1 * MiB, int(llc or 32 * MiB) // 16 // 64 * 64), big}):
        add(
            chase(
                s,
                (2**18) if quick else (2**21),
                reps,
                min_time_s=rep_s,
                pages=alt,
                name=f"pagechase_{alt}_{s}",
            )
        )
    for rb in (64, 256, 512):
        for t in thread_list:
            add(gather(rb, t, gtab, nlook, reps, min_time_s=rep_s, pages=pages))
    add(sgemm(512 if quick else 1536, reps, rep_s))
    mem = float(info.get("memory_bytes") or 0)
    cal = cpu_calibration_workloads(quick, llc, mem / 4 if mem > 0 else None)
    runner = EmbeddingRunner(impl, nthr)
    try:
        for w in cal:
            add(measure_workload(runner, w, reps, rep_s, pages))
    finally:
        runner.close()
    # the other implementation at 1 and all threads, recorded for comparison (not fitted)
    other = "torch" if impl == "numba" else "numba"
    compare = [w for w in cal if w.name.startswith("cal_d64_l32_")][::2]
    if other == "numba" or torch_available():
        for t in thread_list:
            r = EmbeddingRunner(other, t)
            try:
                for w in cal if (other_full and t == nthr) else compare:
                    m = measure_workload(r, w, reps, rep_s, pages)
                    m.name = f"{other}_t{t}_{w.name}"
                    add(m)
            finally:
                r.close()
    info["loadavg_after"] = [float(x) for x in _read("/proc/loadavg").split()[:3]] or [0.0] * 3
    return {
        "kind": "simrec-cpu-calibration",
        "version": 1,
        "quick": quick,
        "impl": impl,
        "threads": nthr,
        "reps": reps,
        "min_rep_s": rep_s,
        "pages": pages,
        "machine": info,
        "measurements": [m.to_dict() for m in ms],
    }
