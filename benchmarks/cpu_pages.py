"""Does the page size change the CPU's embedding-bag time? A diagnostic, not a calibration.

The CPU-DRAM model (``simrec.sim.systems.cpu_dram``) has no address translation: a lookup costs
its bytes at the LLC or the DRAM, whatever the table's page size. The held-out validation of
2026-12-03 (docs/validation.md) under-predicts the tables of many LLCs, most of all the Zipf
ones, and the hypothesis written down then was the page walks of 4 KiB pages. This script tests
that directly, on *calibration-type* shapes only (dim 64, pooling 32, batch 4,096: the
``cal_d64_l32_b4096_*`` points; no held-out workload is run):

* a dependent pointer chase (64 B slots, one random cycle) over 1/16, 1/4, 4 and 16 LLCs;
* sum-pooled fp32 embedding-bag (torch on all threads, or simrec's numba kernel) on a table of
  1/4 LLC (uniform), 8 LLCs (uniform) and 16 LLCs (uniform and Zipf 1.05), cycling enough batches
  that their rows take 2 LLCs (as the calibration's ``_dram`` points do),

each with the buffer on 4 KiB pages and on transparent huge pages
(:func:`simrec.calibrate.bench_cpu.page_array`: ``madvise`` on an anonymous mapping; the
huge-page bytes the kernel gave are read from ``/proc/self/smaps`` and reported, so a machine
that gives none says so). The committed run (``hwconfigs/measured/h200host_cpu_v3.pages.json``)
was made by this script at commit 2e30a35, which had its own copy of that allocation. The two page
sizes alternate (4K, huge, 4K, huge) so that a machine drifting in speed shows as disagreement
between the two 4K runs. It prints a table (median time, huge / 4K ratio) and writes JSON.

Run from the repo root (needs numpy + numba; torch for ``--impl torch``; about 2 x 4.7 GiB of
memory on a 300 MiB LLC)::

    python3 benchmarks/cpu_pages.py --out pages.json [--impl torch|numba] [--threads N]

What it leaves out: 1 GiB pages; the page-walk caches' sizes (not visible in a VM); the numba
and torch kernels' own prefetching; NUMA placement (one node assumed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simrec.calibrate.bench_cpu import (  # noqa: E402
    EmbeddingRunner,
    chase,
    huge_fraction,
    machine_info,
    measure,
    page_array,
    torch_available,
)
from simrec.calibrate.heldout import (  # noqa: E402
    Workload,
    cycled_batches,
    machine_llc_bytes,
    make_batches,
)

MiB = 2**20


def _huge_bytes(a: np.ndarray) -> int:
    """Bytes of ``a`` on huge pages (0 where not readable)."""
    return int(round((huge_fraction(a) or 0.0) * a.nbytes))


def _thp_setting() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        return "unknown"


def chase_case(nbytes: int, huge: bool, reps: int, steps: int = 2**21) -> dict[str, Any]:
    m = chase(nbytes, steps, reps, pages="huge" if huge else "4k")
    slot_bytes = m.params["bytes"]
    out = {
        "kind": "chase",
        "bytes": slot_bytes,
        "huge": huge,
        "huge_bytes": int(round((m.params["huge_fraction"] or 0.0) * slot_bytes)),
        "times_s": m.times_s,
        "median_s": m.median_s,
        "per_unit_s": m.median_s / steps,
        "spread": m.spread,
    }
    return out


def bag_case(
    runner: EmbeddingRunner,
    w: Workload,
    batches: list[tuple[np.ndarray, np.ndarray]],
    huge: bool,
    reps: int,
) -> dict[str, Any]:
    table = page_array((w.rows, w.dim), np.float32, "huge" if huge else "4k")
    table.fill(0.01)
    prepared = runner.prepare(table, batches)
    tab = runner.table(table)

    def once() -> None:
        for b in prepared:
            runner.run(tab, b)

    m = measure(w.name, "batches", w.nbatches, once, reps)
    out = {
        "kind": "embedding_bag",
        "workload": w.to_dict(),
        "bytes": w.rows * w.dim * 4,
        "huge": huge,
        "huge_bytes": _huge_bytes(table),
        "times_s": m.times_s,
        "median_s": m.median_s,
        "per_unit_s": m.median_s / w.nbatches,
        "spread": m.spread,
    }
    return out


def run(impl: str, threads: int | None, reps: int, quick: bool, log: Any) -> dict[str, Any]:
    info = machine_info()
    llc = float(machine_llc_bytes(info) or 32 * MiB)
    mem = float(info.get("memory_bytes") or 8 * 2**30)
    cap = mem / 8  # two tables of a case never coexist; stay well inside the memory
    scale = 1 / 16 if quick else 1.0
    nthr = int(threads or info["cores"])
    res: list[dict[str, Any]] = []
    chase_sizes = [llc / 16, llc / 4, 4 * llc, 16 * llc]
    for s in chase_sizes:
        nbytes = int(min(cap, max(1 * MiB, s * scale))) // 64 * 64
        for huge in (False, True, False, True):
            r = chase_case(nbytes, huge, reps, steps=2**18 if quick else 2**21)
            res.append(r)
            log(
                f"chase {nbytes / MiB:9.1f} MiB {'huge' if huge else '4K  '}: "
                f"{r['per_unit_s'] * 1e9:7.1f} ns/load (huge pages {r['huge_bytes'] / MiB:.0f} MiB, "
                f"spread {r['spread']:.0%})"
            )
    d, lp, b = (64, 32, 1024 if quick else 4096)
    cases = [("0.25xLLC", 0.25, "uniform"), ("8xLLC", 8, "uniform")]
    cases += [("16xLLC", 16, "uniform"), ("16xLLC", 16, "zipf")]
    runner = EmbeddingRunner(impl, nthr)
    try:
        for tag, llcs, dist in cases:
            tb = int(min(cap, max(1 * MiB, llcs * llc * scale)))
            rows = tb // (4 * d)
            nb = cycled_batches(b * lp, 4 * d, llc * scale, minimum=2) if llcs > 1 else 2
            w = Workload(f"pages_d{d}_l{lp}_b{b}_{tag}_{dist}", rows, d, lp, b, dist, nbatches=nb)
            batches = make_batches(w)
            for huge in (False, True, False, True):
                r = bag_case(runner, w, batches, huge, reps)
                res.append(r)
                log(
                    f"{w.name} ({tb / MiB:.0f} MiB, {nb} batches) {'huge' if huge else '4K  '}: "
                    f"{r['per_unit_s'] * 1e3:8.4f} ms/batch (huge pages "
                    f"{r['huge_bytes'] / MiB:.0f} MiB, spread {r['spread']:.0%})"
                )
    finally:
        runner.close()
    return {
        "kind": "simrec-cpu-pages",
        "version": 1,
        "impl": impl,
        "threads": nthr,
        "reps": reps,
        "quick": quick,
        "thp": _thp_setting(),
        "machine": info,
        "results": res,
    }


def summary(rec: dict[str, Any]) -> list[str]:
    """One line per case: the median over the two runs of each page size, and huge / 4K."""
    groups: dict[tuple[str, int, str], dict[bool, list[float]]] = {}
    for r in rec["results"]:
        name = r["workload"]["name"] if r["kind"] == "embedding_bag" else "chase"
        g = groups.setdefault((name, r["bytes"], r["kind"]), {False: [], True: []})
        g[r["huge"]].append(r["per_unit_s"])
    lines = [f"{'case':44s} {'MiB':>9s} {'4K':>12s} {'huge':>12s} {'huge/4K':>8s} {'4K runs':>8s}"]
    for (name, nbytes, kind), g in groups.items():
        unit, f = ("ns/load", 1e9) if kind == "chase" else ("ms/batch", 1e3)
        k4 = float(np.median(g[False]))
        kh = float(np.median(g[True]))
        drift = max(g[False]) / min(g[False]) - 1
        lines.append(
            f"{name:44s} {nbytes / MiB:9.1f} {k4 * f:9.4g} {unit[:2]:2s} {kh * f:9.4g} "
            f"{unit[:2]:2s} {kh / k4:8.3f} {drift:8.1%}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--impl", choices=["auto", "torch", "numba"], default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tables 1/16 as large (a smoke test)")
    a = ap.parse_args(argv)
    impl = a.impl if a.impl != "auto" else ("torch" if torch_available() else "numba")
    if impl == "torch" and not torch_available():
        print("error: --impl torch but PyTorch is not installed (pip install torch==2.13.0)")
        return 2
    t0 = time.perf_counter()
    rec = run(impl, a.threads, a.reps, a.quick, lambda s: print(s, flush=True))
    rec["wall_s"] = time.perf_counter() - t0
    rec["summary"] = summary(rec)
    out = Path(a.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(out)
    print(f"THP: {rec['thp']}")
    print("\n".join(rec["summary"]))
    print(f"wrote {out} ({rec['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
