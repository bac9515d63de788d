"""NPU benchmark and study: asymmetric vs symmetric mapping on Ascend-like SoCs.

    python benchmarks/bench_npu.py              # speed: DES replay and mapper, medians of 3
    python benchmarks/bench_npu.py --study      # the docs/ascend.md study: tables, JSON, plots

The study generates its traces with simrec's generators (criteo-kaggle, mels) plus a synthetic
family written here: 26 tables with the Criteo Kaggle cardinalities (data.md §1.1) whose share of
the batch's look-ups falls as ``rank^-s`` (``s = 0`` uniform over tables ... ``s = 8``: one table
takes 99.6 %), indices uniform in each table, the same total look-ups per batch for every ``s``.
Every random choice is seeded; the output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simrec.hw.npu import load_npu_hw, npu_device  # noqa: E402
from simrec.shard.npu_mapping import (  # noqa: E402
    asymmetric_mapping,
    npu_tables_from_trace,
    symmetric_mapping,
)
from simrec.sim.systems.npu import NpuSystem  # noqa: E402
from simrec.trace.format import TableSpec, TraceHeader, read_trace, write_trace  # noqa: E402

# data.md §1.1: Criteo Kaggle cardinalities C1..C26
KAGGLE = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
    14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip
SKEWS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
BATCH = 2048
BATCHES = 3
LOOKUPS_PER_SAMPLE = 26  # as Criteo one-hot: 26 look-ups per sample in total
MIP_SECONDS = 5.0


def unbalanced_trace(path: Path, skew: float, seed: int = 0, dim: int = 16) -> Path:
    """26 Criteo-sized tables; table ``t`` gets a ``rank^-skew`` share of the look-ups."""
    rng = np.random.default_rng(seed)
    perm = np.random.default_rng(1234).permutation(26)  # which table is hottest: fixed
    share = np.empty(26)
    share[perm] = np.arange(1, 27, dtype=float) ** -skew
    share /= share.sum()
    total = BATCH * LOOKUPS_PER_SAMPLE
    n = np.floor(share * total).astype(np.int64)
    n[np.argmax(share)] += total - n.sum()
    h = TraceHeader(
        tables=tuple(TableSpec(name=f"C{i + 1}", rows=KAGGLE[i], dim=dim) for i in range(26)),
        batch_size=BATCH,
        provenance={
            "source": "generated",
            "generator": "bench_npu.unbalanced",
            "seed": seed,
            "params": {"skew": skew, "dim": dim, "batch_size": BATCH},
        },
    )
    batches = []
    for _ in range(BATCHES):
        lens, idx = [], []
        for t in range(26):
            cut = np.sort(rng.integers(0, n[t] + 1, BATCH - 1))
            lens.append(np.diff(np.r_[0, cut, n[t]]))
            idx.append(rng.integers(0, KAGGLE[t], n[t]))
        off = np.r_[0, np.cumsum(np.concatenate(lens))].astype(np.int64)
        batches.append({"offsets": off, "indices": np.concatenate(idx).astype(np.int64)})
    return write_trace(path, h, batches)


def npu(name: str):
    return npu_device(load_npu_hw(name))[1].to_params(name=name)


def replay(p, m, trace: Path):
    r = read_trace(trace)
    return NpuSystem(p, m, name=p.name).simulate(r, r.header)


def compare(p, trace: Path) -> dict:
    tables = npu_tables_from_trace(read_trace(trace))
    sym = symmetric_mapping(tables, p, by="count")
    sym_rows = symmetric_mapping(tables, p, by="rows")
    asym = asymmetric_mapping(tables, p, time_limit=MIP_SECONDS, baseline=sym)
    rows_only = asymmetric_mapping(tables, p, time_limit=MIP_SECONDS, baseline=sym, replicate=False)
    rs, rr, ra = replay(p, sym, trace), replay(p, sym_rows, trace), replay(p, asym, trace)
    ro = replay(p, rows_only, trace)
    strategies: dict[str, int] = {}
    for q in asym.parts:
        strategies[q.strategy] = strategies.get(q.strategy, 0) + 1
    split = sum(1 for t in range(len(tables)) if len(asym.parts_of(t)) > 1)
    return {
        "sym_batch_s": rs.latency_s["mean"],
        "sym_rows_batch_s": rr.latency_s["mean"],
        "asym_batch_s": ra.latency_s["mean"],
        "speedup": rs.sim_time_s / ra.sim_time_s,
        "speedup_vs_rows": rr.sim_time_s / ra.sim_time_s,
        "asym_rows_only_batch_s": ro.latency_s["mean"],
        "speedup_rows_only": rs.sim_time_s / ro.sim_time_s,
        "replicated_tables": sum(1 for q in asym.parts if q.sk > 1 and q.sq == 0),
        "asym_strategies": strategies,
        "split_tables": split,
        "mip": {k: asym.record.get(k) for k in ("status", "chosen", "gap", "solve_time_s")},
        "lookups_per_batch": rs.lookups / rs.batches,
        "gm_util_asym": ra.utilisation.get(f"{p.name}.gm"),
    }


def gpu_batch_s(trace: Path) -> float:
    """One H100 of the multi_gpu preset (hwconfigs/multi_gpu.yaml), table-wise, embedding only."""
    from simrec.hw import load_hw
    from simrec.sim.components.network import NetDim, NetworkParams
    from simrec.sim.systems.multi_gpu import MultiGpuSystem

    cfg = load_hw("multi_gpu")
    g = cfg.gpu_params("gpu0")
    pcie = cfg.params("pcie0")
    sysm = MultiGpuSystem([g], NetworkParams((NetDim(1, 1.0, 0.0),)), [pcie], 1e12)
    r = read_trace(trace)
    return sysm.simulate(r, r.header).latency_s["mean"]


def study(out_json: Path, img_dir: Path) -> dict:
    from simrec.trace.generate import gen_criteo_kaggle, gen_mels

    res: dict = {"real": {}, "synthetic": {}, "gpu": {}}
    with tempfile.TemporaryDirectory() as td:
        tdir = Path(td)
        traces = {
            "criteo-kaggle (alpha 1.05)": gen_criteo_kaggle(
                tdir / "kaggle.trc", batches=BATCHES, batch_size=BATCH, alpha=1.05, seed=0,
                dense=False,
            ).path,
            "mels-2021 (64 tables)": gen_mels(
                tdir / "mels21.trc", profile="2021", tables=64, batch_size=BATCH, batches=2,
                dim=16, seed=0,
            ).path,
            "mels-2021 (64 tables, rows x100)": gen_mels(
                tdir / "mels21big.trc", profile="2021", tables=64, batch_size=BATCH, batches=2,
                dim=16, seed=0, rows_factor=400.0,
            ).path,
            "mels-2022 (64 tables)": gen_mels(
                tdir / "mels22.trc", profile="2022", tables=64, batch_size=1024, batches=2,
                dim=16, seed=0,
            ).path,
        }  # fmt: skip
        for s in SKEWS:
            traces[f"skew {s:g}"] = unbalanced_trace(tdir / f"skew{s}.trc", s)
        for hw in ("ascend910", "ascend910b"):
            p = npu(hw)
            res["real"][hw], res["synthetic"][hw] = {}, {}
            for name, tr in traces.items():
                t0 = time.perf_counter()
                c = compare(p, Path(tr))
                c["wall_s"] = time.perf_counter() - t0
                key = "synthetic" if name.startswith("skew") else "real"
                res[key][hw][name] = c
                print(
                    f"{hw:<11} {name:<28} sym {c['sym_batch_s'] * 1e6:9.1f} us  "
                    f"asym {c['asym_batch_s'] * 1e6:8.1f} us  speedup {c['speedup']:6.2f}x "
                    f"(vs by-rows {c['speedup_vs_rows']:6.2f}x; row splits only "
                    f"{c['speedup_rows_only']:6.2f}x)  split {c['split_tables']:2d} "
                    f"(repl {c['replicated_tables']})  "
                    f"{c['asym_strategies']}  mip {c['mip']['status']}/{c['mip']['chosen']}",
                    flush=True,
                )
        for name, tr in traces.items():
            res["gpu"][name] = gpu_batch_s(Path(tr))
        # sensitivity to the one assumption that sets GM's per-row cost: the MTE2 issue cost
        from dataclasses import replace

        res["sensitivity"] = {}
        for issue in (50e-9, 250e-9, 1000e-9):
            p = replace(npu("ascend910"), mte2_issue_s=issue)
            for name in (
                "criteo-kaggle (alpha 1.05)",
                "mels-2021 (64 tables, rows x100)",
                "skew 8",
            ):
                c = compare(p, Path(traces[name]))
                res["sensitivity"][f"{issue * 1e9:g} ns | {name}"] = c
                print(f"mte2 issue {issue * 1e9:5g} ns  {name:<34} speedup {c['speedup']:6.2f}x  "
                      f"asym {c['asym_batch_s'] * 1e6:8.1f} us", flush=True)  # fmt: skip
    for hw in ("ascend910", "ascend910b"):
        syn = res["synthetic"][hw]
        for k in ("sym_batch_s", "asym_batch_s"):
            v = [syn[n][k] for n in syn]
            res.setdefault("variation", {}).setdefault(hw, {})[k] = {
                "mean": statistics.mean(v),
                "cv": statistics.pstdev(v) / statistics.mean(v),
                "max_over_min": max(v) / min(v),
            }
    gv = [res["gpu"][n] for n in res["gpu"] if n.startswith("skew")]
    res["variation"]["h100"] = {
        "cv": statistics.pstdev(gv) / statistics.mean(gv),
        "max_over_min": max(gv) / min(gv),
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    plots(res, img_dir)
    return res


def plots(res: dict, img: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    names = list(res["synthetic"]["ascend910"])
    xs = [float(n.split()[1]) for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for hw, mk, col in (("ascend910", "o", "C0"), ("ascend910b", "s", "C1")):
        ax.plot(xs, [res["synthetic"][hw][n]["speedup"] for n in names], marker=mk, color=col,
                label=f"{hw}, row splits + replicas")  # fmt: skip
        ax.plot(xs, [res["synthetic"][hw][n]["speedup_rows_only"] for n in names], marker=mk,
                color=col, ls=":", label=f"{hw}, row splits only")  # fmt: skip
    ax.axhspan(1.5, 6.5, color="0.9", label="paper: 1.5-6.5x (real)")
    ax.axhline(20, color="0.5", ls="--", label="paper: >20x (extreme)")
    ax.set_yscale("log")
    ax.set_xlabel("table skew s (share of table at rank k ~ k^-s)")
    ax.set_ylabel("speedup asym / sym (by count)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img / "ascend_speedup_skew.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(xs, [res["synthetic"]["ascend910"][n]["sym_batch_s"] * 1e6 for n in names], "o-",
            label="910 symmetric")  # fmt: skip
    ax.plot(xs, [res["synthetic"]["ascend910"][n]["asym_batch_s"] * 1e6 for n in names], "o--",
            label="910 asymmetric")  # fmt: skip
    ax.plot(xs, [res["synthetic"]["ascend910b"][n]["sym_batch_s"] * 1e6 for n in names], "s-",
            label="910B symmetric")  # fmt: skip
    ax.plot(xs, [res["synthetic"]["ascend910b"][n]["asym_batch_s"] * 1e6 for n in names], "s--",
            label="910B asymmetric")  # fmt: skip
    ax.plot(xs, [res["gpu"][n] * 1e6 for n in names], "^:", label="1 x H100 (multi_gpu preset)")
    ax.set_yscale("log")
    ax.set_xlabel("table skew s")
    ax.set_ylabel("embedding time per batch (us)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img / "ascend_latency_vs_distribution.png", dpi=120)
    plt.close(fig)

    real = list(res["real"]["ascend910"])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    w = 0.38
    for i, hw in enumerate(("ascend910", "ascend910b")):
        ax.bar(np.arange(len(real)) + (i - 0.5) * w,
               [res["real"][hw][n]["speedup"] for n in real], w, label=hw)  # fmt: skip
    ax.axhspan(1.5, 6.5, color="0.9", zorder=0)
    ax.set_xticks(np.arange(len(real)), real, fontsize=7)
    ax.set_ylabel("speedup asym / sym")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img / "ascend_speedup_real.png", dpi=120)
    plt.close(fig)


def bench() -> None:
    p = npu("ascend910")
    with tempfile.TemporaryDirectory() as td:
        tr = unbalanced_trace(Path(td) / "b.trc", 1.0)
        tables = npu_tables_from_trace(read_trace(tr))
        sym = symmetric_mapping(tables, p)
        asym = asymmetric_mapping(tables, p, time_limit=MIP_SECONDS)
        for label, m in (("symmetric", sym), ("asymmetric", asym)):
            walls, lk = [], 0
            for _ in range(4):
                t0 = time.perf_counter()
                r = replay(p, m, tr)
                walls.append(time.perf_counter() - t0)
                lk = r.lookups
            med = statistics.median(walls[1:])
            print(f"DES replay {label:<10} {lk:,} lookups: median {med:.3f} s, "
                  f"{lk / med / 1e6:.2f} M simulated lookups/s")  # fmt: skip
        sol = []
        for _ in range(3):
            t0 = time.perf_counter()
            asymmetric_mapping(tables, p, time_limit=MIP_SECONDS)
            sol.append(time.perf_counter() - t0)
        print(f"asymmetric mapper (26 tables x 32 cores, MIP limit {MIP_SECONDS:g} s): "
              f"median {statistics.median(sol):.2f} s")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the default short run (CI passes it)")
    ap.add_argument("--study", action="store_true")
    ap.add_argument("--replot", action="store_true", help="redraw the plots from --json only")
    ap.add_argument("--img", default=str(ROOT / "docs" / "img"), help="folder for the plots")
    ap.add_argument("--json", default="/tmp/ascend_study.json", help="where the numbers go")
    a = ap.parse_args()
    if a.replot:
        plots(json.loads(Path(a.json).read_text()), Path(a.img))
    elif a.study:
        study(Path(a.json), Path(a.img))
    else:
        bench()
