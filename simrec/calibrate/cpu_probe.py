"""CPU measurements for calibration and validation, self-contained (numpy + numba, torch optional).

Run on the machine to calibrate, from the repository root (simrec need not be installed)::

    python3 -m simrec.calibrate.cpu_probe --out cpu.probe.json [--threads N] [--quick]

It runs, in one process and in this order,

1. the calibration microbenchmarks of :func:`simrec.calibrate.bench_cpu.run_cpu_benchmarks`
   (streaming bandwidth, pointer-chase latency, random gathers of 64/256/512 B rows at 1 and all
   threads, SGEMM, and the embedding-bag calibration points on cache-, LLC- and DRAM-resident
   tables), and
2. the held-out embedding-bag workloads of :func:`simrec.calibrate.heldout.cpu_heldout` (the same
   seeded indices on every machine; the LLC- and DRAM-regime tables and the number of cycled
   batches sized from this machine's LLC, tables capped at a quarter of its memory), with the
   same implementation and thread count, and
3. the **drift sentinels**: three of the calibration points again (:func:`drift_points`: dim 64,
   pooling 32 on the cache-, LLC- and DRAM-resident tables), right after the held-out runs of
   the chosen implementation, so that a record says how far the machine itself moved between
   the calibration and the held-out measurements (a shared host's memory system can drift by
   tens of percent over minutes, which the repetitions of one benchmark do not show),

for the chosen embedding-bag implementation (``--impl``; default ``auto``: PyTorch's
``torch.nn.functional.embedding_bag`` with its OpenMP threads when torch is installed — the kernel
DLRM inference on CPUs runs, with a small per-call cost — else simrec's numba kernel on Python
threads) and, when available, the other one too (its calibration points and held-out runs are
prefixed ``IMPL_tN_``), so that either can be fitted (``simrec calibrate --impl``). The preset
describes the chosen one; this choice was made before any run on the target machine,

and writes one JSON (``kind: simrec-cpu-probe``): ``machine`` (CPU model, cores, SMT, caches,
memory, load average before and after, software versions, date), ``calibration`` (the
``simrec-cpu-calibration`` record the fit takes), ``heldout`` (one measurement per workload: every
repetition's time, the median, the spread, the distinct rows per batch), ``threads``, ``impl``,
``reps``, ``version`` (2: LLC-relative sizes) and ``heldout_version``, ``drift`` (the sentinels'
measurements, named as the calibration points they repeat; absent in probes before 2026-12-03's
sixth session), ``heldout_v3`` (held-out set v3, :func:`simrec.calibrate.heldout.cpu_heldout_v3`,
measured after the sentinels with the chosen implementation only; absent before 2026-12-04),
and the wall time of each part. Memory: the largest table is 16 LLCs (4.7 GiB on a 300 MiB L3), allocated once per
implementation and workload. Fitting and the preset are done elsewhere by
``simrec calibrate --device cpu --from-json cpu.probe.json -o NAME.yaml --validate``; the
validation then compares the model with the held-out times measured here
(``simrec validate --measure --hw NAME.yaml --probe-json cpu.probe.json``).

Threads: by default every CPU this process may run on (``sched_getaffinity``; SMT siblings count as
CPUs, and the machine record says how many threads share a core). The preset describes that thread
count: ``cores_per_socket`` = threads.

It imports nothing from simrec but :mod:`simrec.calibrate.heldout`, :mod:`simrec.calibrate.bench_cpu`
and the numba embedding-bag kernel (:mod:`simrec.functional.embedding_bag`), which need only numpy
and numba (and torch for ``--impl torch``). Exit status 2 with a message on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from simrec.calibrate.bench_cpu import (
    PAGES,
    EmbeddingRunner,
    machine_info,
    measure_workload,
    run_cpu_benchmarks,
    torch_available,
)
from simrec.calibrate.heldout import CPU_HELDOUT_VERSION, cpu_heldout_for, cpu_heldout_set_for

__all__ = ["PROBE_KIND", "drift_points", "probe", "main"]

PROBE_KIND = "simrec-cpu-probe"


def drift_points(cal: dict[str, Any]) -> list[Any]:
    """The calibration workloads a probe measures again after its held-out runs: dim 64,
    pooling 32 on the cache-, LLC- and DRAM-resident tables (those of the calibration record
    ``cal``, by name: ``cal_d64_l32_B_l2``, ``_llc``, ``_dram``)."""
    from simrec.calibrate.heldout import Workload

    out = []
    for m in cal["measurements"]:
        n = m["name"]
        if n.startswith("cal_d64_l32_") and n.rsplit("_", 1)[-1] in ("l2", "llc", "dram"):
            out.append(Workload.from_dict(m["params"]["workload"]))
    return out


def probe(
    quick: bool = False,
    impl: str = "numba",
    threads: int | None = None,
    reps: int | None = None,
    log: Callable[[str], None] | None = None,
    pages: str = "huge",
) -> dict[str, Any]:
    """Run the calibration benchmarks and the held-out workloads, every table on ``pages``
    (``huge``: transparent huge pages, ``4k``: kept off them); returns the probe record."""
    say = log or (lambda s: None)
    t0 = time.perf_counter()
    info = machine_info()
    nthr = int(threads or info["cores"])
    say(
        f"cpu probe: {info['cpu_model']}, {info['cores']} CPUs usable "
        f"({info.get('threads_per_core')} threads per core), caches {info['caches']}, "
        f"{info['memory_bytes'] / 2**30:.1f} GiB, load average {info['loadavg']}; "
        f"impl {impl}, {nthr} threads"
    )
    other = "torch" if impl == "numba" else "numba"
    both = other == "numba" or torch_available()
    say("[1/2] calibration benchmarks")
    cal = run_cpu_benchmarks(
        quick, impl, nthr, reps, log=lambda s: say("  " + s), other_full=both, pages=pages
    )
    t1 = time.perf_counter()
    say(f"[1/2] done in {t1 - t0:.0f} s")
    wls = cpu_heldout_for(info, quick)
    wls3 = cpu_heldout_set_for(info, "v3", quick)
    held: list[dict[str, Any]] = []
    held3: list[dict[str, Any]] = []
    drift: list[dict[str, Any]] = []

    def measure_set(runner: Any, ws: list[Any], out: list[dict[str, Any]], prefix: str) -> None:
        """Measure the held-out workloads ``ws`` into ``out``, names prefixed ``prefix``."""
        for i, w in enumerate(ws):
            m = measure_workload(runner, w, cal["reps"], cal["min_rep_s"], pages)
            m.name = prefix + w.name
            out.append(m.to_dict())
            say(
                f"  ({i + 1}/{len(ws)}) {m.name}: {m.median_s / m.work * 1e3:.4f} ms per "
                f"batch (spread {m.spread:.1%})"
            )

    for k, use in enumerate([impl, other] if both else [impl]):
        say(f"[2/2] {len(wls)} held-out workloads, {use} on {nthr} threads")
        runner = EmbeddingRunner(use, nthr)
        try:
            measure_set(runner, wls, held, f"{use}_t{nthr}_" if k else "")
            if k == 0:
                for w in drift_points(cal):
                    m = measure_workload(runner, w, cal["reps"], cal["min_rep_s"], pages)
                    drift.append(m.to_dict())
                    say(f"  drift sentinel {m.name}: {m.median_s / m.work * 1e3:.4f} ms per batch")
                # held-out set v3 last, so that v2 and the sentinels run as they always did
                say(f"[2/2] {len(wls3)} held-out workloads of set v3, {use} on {nthr} threads")
                measure_set(runner, wls3, held3, "")
        finally:
            runner.close()
    t2 = time.perf_counter()
    after = machine_info()
    info["loadavg_after"] = after["loadavg"]
    info["date_utc_end"] = after["date_utc"]
    say(f"[2/2] done in {t2 - t1:.0f} s")
    return {
        "kind": PROBE_KIND,
        "version": 2,
        "heldout_version": CPU_HELDOUT_VERSION,
        "quick": quick,
        "impl": impl,
        "threads": nthr,
        "reps": cal["reps"],
        "min_rep_s": cal["min_rep_s"],
        "pages": pages,
        "machine": info,
        "calibration": cal,
        "heldout": held,
        "heldout_v3": held3,
        "drift": drift,
        "wall_s": {"calibration": t1 - t0, "heldout": t2 - t1, "total": t2 - t0},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--quick", action="store_true", help="small sizes (a pipeline check)")
    ap.add_argument("--threads", type=int, default=None, help="threads (default: all usable CPUs)")
    ap.add_argument(
        "--impl",
        choices=("auto", "numba", "torch"),
        default="auto",
        help="embedding-bag implementation the preset describes (auto: torch when installed, "
        "else numba); the other one is measured too when available",
    )
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 9, quick 3)")
    ap.add_argument(
        "--pages",
        choices=PAGES,
        default="huge",
        help="page backing of every table and buffer: transparent huge pages (madvise; the "
        "default, what the model describes) or 4 KiB pages (adds the page walks)",
    )
    a = ap.parse_args(argv)
    if a.threads is not None and a.threads < 1:
        print("error: --threads must be >= 1.", file=sys.stderr)
        return 2
    if a.impl == "torch" and not torch_available():
        print(
            "error: --impl torch but PyTorch is not installed. Fix: use --impl numba.",
            file=sys.stderr,
        )
        return 2
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        print(f"error: the folder of --out ({out_dir}) does not exist.", file=sys.stderr)
        return 2
    impl = a.impl if a.impl != "auto" else ("torch" if torch_available() else "numba")
    rec = probe(a.quick, impl, a.threads, a.reps, log=lambda s: print(s, flush=True), pages=a.pages)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({rec['wall_s']['total']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
