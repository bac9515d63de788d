"""Benchmarks of the sharding planner (simrec.shard): solve time and gap vs tables and devices.

Usage::

    python benchmarks/bench_shard.py --quick          # T in {26, 100}, J in {2, 4}; ~1-2 minutes
    python benchmarks/bench_shard.py                  # T in {26, 100, 300, 856}, J in {2, 4, 8}
    python benchmarks/bench_shard.py --repeats 3 --json out.json --plot out.png

Instances are the MELS-like synthetic problems of ``shared/reference/mip-probe.md``: rows
log-uniform 1e3..4e7, dims {16, 32, 64, 128}, lognormal pooling (mean 15), batch 4096, J identical
two-tier devices whose fast tiers together hold 10 % of the model and whose slow tier is 100x
slower per lookup. Two workloads: ``skewed`` (Zipf exponents 1.05..1.2 per table) and ``uniform``
(every row equally likely). Each configuration runs ``--repeats`` seeds; the script prints the
median (and min..max) of the solve time, the gap (against the full problem's LP/trivial bound),
and the MIP's makespan improvement over the best heuristic on the same cost model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from simrec.shard.mip import solve
from simrec.shard.problem import (
    ShardProblem,
    TableStat,
    default_breakpoints,
    synthetic_tables,
    two_tier_device,
    zipf_cdf,
)

SEED = 20251125
#: Criteo Kaggle cardinalities, 26 categorical features (shared/reference/data.md §1.1).
CRITEO_KAGGLE = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip


def criteo_instance(devices: int, alpha: float = 1.1, batch: int = 4096) -> ShardProblem:
    """26 Criteo Kaggle tables (dim 16, one lookup per sample, Zipf ``alpha`` rows), J two-tier
    devices whose fast tiers hold 10 % of the model."""
    x = default_breakpoints(16)
    tabs = tuple(
        TableStat(f"C{i + 1}", n, 16, float(batch), tuple(x), tuple(zipf_cdf(n, alpha, x)))
        for i, n in enumerate(CRITEO_KAGGLE)
    )
    fast = sum(t.table_bytes for t in tabs) * 0.1 / devices
    devs = tuple(two_tier_device(f"d{j}", fast, 1e15) for j in range(devices))
    return ShardProblem(tabs, devs, batch)


def instance(
    tables: int, devices: int, workload: str, seed: int, fine_tables: int | None = None
) -> ShardProblem:
    """The probe-shaped instance (see the module docstring). ``fine_tables``: which tables get
    breakpoints at ratio 2^(1/4) instead of 2 (``ShardProblem.fine_tables``): None by the
    planner's automatic rule, 0 none, N the N largest."""
    if workload == "skewed":
        tabs = synthetic_tables(tables, seed=seed, alpha_range=(1.05, 1.2))
    else:
        tabs = synthetic_tables(tables, seed=seed, uniform=True)
    fast = sum(t.table_bytes for t in tabs) * 0.1 / devices
    devs = tuple(two_tier_device(f"d{j}", fast, 1e15) for j in range(devices))
    return ShardProblem(tabs, devs, 4096, fine_tables=fine_tables)


def run_one(
    tables: int,
    devices: int,
    workload: str,
    seed: int,
    time_limit: float,
    gap: float,
    fine_tables: int | None = None,
) -> dict[str, Any]:
    p = instance(tables, devices, workload, seed, fine_tables)
    t0 = time.perf_counter()
    res = solve(p, time_limit=time_limit, gap=gap)
    wall = time.perf_counter() - t0
    heur = {k: v.makespan_s for k, v in res.heuristics.items() if v is not None}
    best_name = min(heur, key=heur.__getitem__)
    ms = res.evaluation.makespan_s
    return {
        "tables": tables,
        "devices": devices,
        "workload": workload,
        "seed": seed,
        "strategy": res.record.strategy,
        "status": res.record.status,
        "wall_s": wall,
        "solve_time_s": res.record.solve_time_s,
        "gap": res.record.gap,
        "makespan_s": ms,
        "bound_s": res.record.bound,
        "best_heuristic": best_name,
        "best_heuristic_s": heur[best_name],
        "improvement": heur[best_name] / ms - 1.0,
        "heuristics_s": heur,
        "num_variables": res.record.num_variables,
        "refined_tables": len(res.opts.refined),
    }


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.4g} ({min(xs):.3g}..{max(xs):.3g})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grid, short limits")
    ap.add_argument("--repeats", type=int, default=1, help="seeds per configuration")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    ap.add_argument("--gap", type=float, default=0.01, help="relative gap target")
    ap.add_argument("--workloads", default="skewed,uniform")
    ap.add_argument(
        "--fine-tables",
        type=int,
        default=None,
        help="finer CDF breakpoints (ratio 2^(1/4)) for this many largest tables (0: none; "
        "default: the planner's automatic rule, docs/sharding.md)",
    )
    ap.add_argument("--tables", help="comma-separated table counts (overrides the grid)")
    ap.add_argument("--devices", help="comma-separated device counts (overrides the grid)")
    ap.add_argument("--json", dest="json_out", help="write all runs as JSON here")
    ap.add_argument("--plot", help="write a PNG of solve time and gap vs tables here")
    args = ap.parse_args()
    if args.quick:
        grid_t, grid_j, limit = (26, 100), (2, 4), args.time_limit or 20.0
    else:
        grid_t, grid_j, limit = (26, 100, 300, 856), (2, 4, 8), args.time_limit or 120.0
    if args.tables:
        grid_t = tuple(int(v) for v in args.tables.split(","))
    if args.devices:
        grid_j = tuple(int(v) for v in args.devices.split(","))
    workloads = [w for w in args.workloads.split(",") if w]
    runs: list[dict[str, Any]] = []
    hdr = (
        f"{'workload':<8} {'T':>4} {'J':>2} {'strategy':<8} {'solve s (median, min..max)':<28}"
        f" {'gap % (median)':<26} {'MIP vs best heuristic':<30} variables refined"
    )
    print(f"bench_shard: gap target {args.gap}, time limit {limit} s, repeats {args.repeats}")
    print(hdr)
    for w in workloads:
        for t in grid_t:
            for j in grid_j:
                rs = [
                    run_one(t, j, w, SEED + k, limit, args.gap, args.fine_tables)
                    for k in range(args.repeats)
                ]
                runs += rs
                imp = [r["improvement"] * 100 for r in rs]
                print(
                    f"{w:<8} {t:>4} {j:>2} {rs[0]['strategy']:<8} "
                    f"{med([r['solve_time_s'] for r in rs]):<28} "
                    f"{med([r['gap'] * 100 for r in rs]):<26} "
                    f"{'+' + med(imp) + ' % vs ' + rs[0]['best_heuristic']:<30} "
                    f"{rs[0]['num_variables']} {rs[0]['refined_tables']}",
                    flush=True,
                )
    print("criteo26: 26 Criteo Kaggle tables, gap target 1e-6 (proven optimality)")
    for j in (2, 4, 8) if not args.quick else (4, 8):
        ts, gs, st = [], [], []
        for _ in range(args.repeats):
            res = solve(criteo_instance(j), time_limit=limit, gap=1e-6)
            ts.append(res.record.solve_time_s)
            gs.append(res.record.gap * 100)
            st.append(res.record.status)
            runs.append(
                {
                    "tables": 26,
                    "devices": j,
                    "workload": "criteo26",
                    "status": res.record.status,
                    "solve_time_s": res.record.solve_time_s,
                    "gap": res.record.gap,
                    "makespan_s": res.evaluation.makespan_s,
                }
            )
        print(f"criteo26   26 {j:>2} {res.record.strategy:<8} {med(ts):<28} {med(gs):<26} {st[0]}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(runs, f, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for w in workloads:
            for j in grid_j:
                pts = [
                    (
                        t,
                        statistics.median(
                            r["solve_time_s"]
                            for r in runs
                            if r["tables"] == t and r["devices"] == j and r["workload"] == w
                        ),
                        statistics.median(
                            r["gap"] * 100
                            for r in runs
                            if r["tables"] == t and r["devices"] == j and r["workload"] == w
                        ),
                    )
                    for t in grid_t
                ]
                ax[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{w} J={j}")
                ax[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=f"{w} J={j}")
        ax[0].set(xlabel="tables", ylabel="solve time (s, median)", xscale="log")
        ax[1].set(xlabel="tables", ylabel="gap (%, median)", xscale="log")
        ax[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
