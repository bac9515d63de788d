"""SCRec reproduction study: where does the simulated system land against the paper's claims?

Run: ``python benchmarks/study_screc.py [--quick] [--out /tmp/screc_study]``. Generates the traces
under ``--out`` (never in the repository), simulates SCRec (``hwconfigs/screc.yaml``) and the
baselines (``hwconfigs/cpu_dram.yaml``, a measured-cycle CPU variant, ``hwconfigs/multi_gpu.yaml``),
prints markdown tables and writes ``docs/img/screc_*.png`` and ``results.json`` under ``--out``.
``--quick`` uses small traces (a smoke run for CI, no plots).

Every number the study varies is a parameter of the models; the assumptions are in docs/screc.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from simrec.hw import load_hw
from simrec.sim.cli import screc_energy
from simrec.sim.cli import simulate as sim_baseline
from simrec.sim.systems.screc import ScrecSystem
from simrec.trace.format import read_trace

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"

#: data.md §5.2: PyTorch embedding_bag, 16 threads, D = 16, L = 32: 0.49 G rows/s, i.e.
#: 30.6 M rows/s per thread; at the Xeon 8380's 2.3 GHz that is 75 cycles per lookup, of which the
#: CPU model's pooling term charges 16 / (64 x 0.25) = 1 cycle, leaving 74 for lookup_cycles.
MEASURED_LOOKUP_CYCLES = 2.3e9 / (0.49e9 / 16) - 1.0


def gen(out: Path, kind: str, name: str, **kw: Any) -> Path:
    """Generate a trace with the ``simrec trace gen`` CLI (cached by file name)."""
    p = out / name
    if not p.exists():
        exe = shutil.which("simrec") or str(Path(sys.executable).parent / "simrec")
        args = [exe, "trace", "gen", kind, "-o", str(p)]
        for k, v in kw.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        subprocess.run(args, check=True, capture_output=True)
    return p


def cpu_measured(out: Path) -> Any:
    """The cpu_dram preset with lookup_cycles from the measured embedding_bag rate."""
    p = out / "cpu_dram_measured.yaml"
    base = ROOT / "hwconfigs" / "cpu_dram.yaml"
    c = MEASURED_LOOKUP_CYCLES
    p.write_text(
        f"extends: {base}\nname: cpu_dram_measured\n"
        f"devices:\n  cpu0: {{lookup_cycles: {c:.1f}}}\n  cpu1: {{lookup_cycles: {c:.1f}}}\n"
        # a TB-scale model needs a big server's DRAM (screc.md §6.3); capacity does not change
        # the cpu_dram model's timing, only whether the tables fit
        "  dram0: {rows: null, capacity: 1 TiB}\n  dram1: {rows: null, capacity: 1 TiB}\n"
    )
    return load_hw(p)


def run_screc(hw: Any, trace: Path, **over: Any) -> dict[str, Any]:
    tr = read_trace(trace)
    sysm = ScrecSystem.from_hw(hw, overrides=over)
    t0 = time.perf_counter()
    r = sysm.simulate(tr, tr.header)
    wall = time.perf_counter() - t0
    e = screc_energy(r, hw, sysm.cfg.n_devices)
    tt = sum(d["placement"].get("tt_tables", 0) for d in r.extra["devices"])
    return {
        "samples_per_s": r.samples_per_s,
        "lookups_per_s": r.lookups_per_s,
        "breakdown": {k: v / r.batches for k, v in r.breakdown_s.items()},
        "j_per_sample": e.server_j_per_sample,
        "device_j_per_sample": e.device_j_per_sample,
        "tt_tables": tt,
        "tiers": {
            k: r.counters.get(k, 0) / r.lookups
            for k in ("sram_rows", "ddr_rows", "cold_rows", "tt_rows")
        },
        "wall_s": wall,
        "lookups": r.lookups,
    }


def run_base(hw: Any, trace: Path) -> dict[str, Any]:
    from simrec.energy import estimate_energy, table_from_hw

    r = sim_baseline(hw, trace)
    e = estimate_energy(r, table_from_hw(hw), hw)
    return {
        "kind": r.kind,
        "samples_per_s": r.samples_per_s,
        "breakdown": {k: v / r.batches for k, v in r.breakdown_s.items()},
        "j_per_sample": e.server_j_per_sample,
    }


def fmt(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("/tmp/screc_study"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--parts", default="headline,sensitivity,batch", help="comma list of parts to (re)run"
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    hw = load_hw(ROOT / "hwconfigs" / "screc.yaml")
    bases = {
        "cpu_dram": load_hw(ROOT / "hwconfigs" / "cpu_dram.yaml"),
        "cpu_dram_measured": cpu_measured(out),
        "multi_gpu": load_hw(ROOT / "hwconfigs" / "multi_gpu.yaml"),
    }
    tables = 64 if quick else 856
    b_main = 256 if quick else 1024
    big = 40 if quick else 400  # rows per expected distinct row per batch: a model >> DDR4
    mels = {
        b: gen(
            out,
            "mels",
            f"mels_t{tables}_b{b}_rf{big}.trc",
            tables=tables,
            batch_size=b,
            batches=3,
            dim=64,
            seed=1,
            rows_factor=big,
        )  # fmt: skip
        for b in ([b_main] if quick else [256, 1024, 2048])
    }
    small = gen(out, "mels", f"mels_t{tables}_b{b_main}.trc", tables=tables, batch_size=b_main,
                batches=3, dim=64, seed=1)  # fmt: skip
    crit = gen(out, "criteo-kaggle", f"criteo_b{2048 if quick else 65536}.trc",
               batch_size=2048 if quick else 65536, batches=3, dim=16, seed=1)  # fmt: skip
    prev = out / "results.json"
    res: dict[str, Any] = json.loads(prev.read_text()) if prev.exists() and not quick else {}
    res["measured_lookup_cycles"] = MEASURED_LOOKUP_CYCLES
    deployed = {"profile_batches": 1}  # plan from batch 0, simulate batches 0-2
    oracle = {"coverage_estimate": "profile"}  # plan from every simulated batch

    # -- headline: MELS-like and Criteo Kaggle --------------------------------------------------
    workloads = (("mels", mels[b_main]), ("mels_small", small), ("criteo", crit))
    for wname, trace in workloads if "headline" in parts else ():
        h = read_trace(trace).header
        res.setdefault("model_bytes", {})[wname] = float(
            sum(t.rows * t.bytes_per_row for t in h.tables)
        )
        row: dict[str, Any] = {"baselines": {k: run_base(h, trace) for k, h in bases.items()}}
        dev = hw.params("ssd0")
        wide = replace(dev, cores=replace(dev.cores, emb=replace(dev.cores.emb, lanes=64)))
        variants = {
            "deployed (profile batch 0, default plan)": deployed,
            "oracle (profile = simulated batches)": oracle,
            "deployed, no TT": {**deployed, "tt_policy": "none"},
            "deployed, index sharding": {**deployed, "sharding": "index"},
            "oracle, 64-lane EMB cores": {**oracle, "device": wide},
            "oracle, 16 devices": {**oracle, "n_devices": 16},
        }
        row["screc"] = {k: run_screc(hw, trace, **v) for k, v in variants.items()}
        res[wname] = row
        print(f"\n### {wname}: {trace.name}, {res['model_bytes'][wname] / 1e9:.3g} GB fp32\n")
        print("| system | samples/s | speedup vs cpu_dram | vs cpu_dram_measured | "
              "energy eff. vs multi_gpu | TT tables | lookups SRAM/DDR4/NAND/TT | "
              "per-batch stages (ms) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        bb = row["baselines"]
        for k, v in row["screc"].items():
            t = v["tiers"]
            stages = ", ".join(
                f"{s} {1e3 * x:.3g}"
                for s, x in v["breakdown"].items()
                if x > 0 and s != "embedding"
            )
            print(
                f"| SCRec {k} | {fmt(v['samples_per_s'])} | "
                f"{v['samples_per_s'] / bb['cpu_dram']['samples_per_s']:.3g}x | "
                f"{v['samples_per_s'] / bb['cpu_dram_measured']['samples_per_s']:.3g}x | "
                f"{bb['multi_gpu']['j_per_sample'] / v['j_per_sample']:.3g}x | "
                f"{v['tt_tables']:.0f} | {t['sram_rows']:.2f}/{t['ddr_rows']:.2f}/"
                f"{t['cold_rows']:.2f}/{t['tt_rows']:.2f} | {stages} |"
            )
        for k, v in bb.items():
            stages = ", ".join(f"{s} {1e3 * x:.3g}" for s, x in v["breakdown"].items() if x > 0)
            print(f"| {k} | {fmt(v['samples_per_s'])} | | | | | | {stages} |")

    # -- sensitivity (MELS-like, deployed plan) ---------------------------------------------------
    trace = mels[b_main]
    cpu_m = res["mels"]["baselines"]["cpu_dram_measured"]["samples_per_s"]
    sweeps: dict[str, tuple[str, list[Any]]] = {
        "n_devices": ("N SmartSSDs", [1, 2, 4] if quick else [1, 2, 4, 8, 16]),
        "tt_rank": ("TT rank", [8, 16] if quick else [4, 8, 16, 32]),
        "ddr_fraction": ("DDR4 share", [0.0, 1.0] if quick else [0.0, 0.001, 0.01, 0.1, 1.0]),
    }
    sens: dict[str, Any] = {}
    for key, (_label, vals) in sweeps.items() if "sensitivity" in parts else ():
        sens[key] = {}
        for v in vals:
            for setting, base in (("deployed", deployed), ("oracle", oracle)):
                r = run_screc(hw, trace, **{**base, key: v})
                sens[key].setdefault(setting, []).append(r["samples_per_s"])
        print(f"\n{key}: {vals}: " + "; ".join(
            f"{s} " + ", ".join(fmt(x) for x in xs) for s, xs in sens[key].items()))  # fmt: skip
    sens["batch_size"] = {"values": sorted(mels), "deployed": [], "oracle": [], "cpu_measured": []}
    for b in sorted(mels) if "batch" in parts else ():
        for setting, base in (("deployed", deployed), ("oracle", oracle)):
            sens["batch_size"][setting].append(run_screc(hw, mels[b], **base)["samples_per_s"])
        sens["batch_size"]["cpu_measured"].append(
            run_base(bases["cpu_dram_measured"], mels[b])["samples_per_s"]
        )
    print("\nbatch_size:", json.dumps(sens["batch_size"]))
    res.setdefault("sensitivity", {})
    for k, v in sens.items():
        if k in sweeps:
            res["sensitivity"][k] = {"values": sweeps[k][1], **v}
    if "batch" in parts:
        res["sensitivity"]["batch_size"] = sens["batch_size"]
    res["cpu_measured_mels"] = cpu_m
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float))
    if not quick:
        plots(res)


def plots(res: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    s = res["sensitivity"]
    cpu = res["cpu_measured_mels"]
    cpu_p = res["mels"]["baselines"]["cpu_dram"]["samples_per_s"]
    for key, label, logx in (
        ("n_devices", "SmartSSDs N", True),
        ("tt_rank", "TT rank R", True),
        ("ddr_fraction", "share of DDR4 used for rows", False),
    ):
        fig, ax = plt.subplots(figsize=(5, 3.4))
        x = np.asarray(s[key]["values"], dtype=float)
        xs = np.where(x == 0, 1e-4, x) if key == "ddr_fraction" else x
        for setting, mk in (("deployed", "o-"), ("oracle", "s--")):
            ax.plot(xs, s[key][setting], mk, label=f"SCRec, {setting} plan")
        ax.axhline(cpu, color="k", lw=1, label="CPU-DRAM, measured cycles")
        ax.axhline(cpu_p, color="grey", lw=1, ls=":", label="CPU-DRAM preset (20 cycles)")
        ax.set_yscale("log")
        if logx or key == "ddr_fraction":
            ax.set_xscale("log")
        ax.set_xlabel(label + (" (0 plotted at 1e-4)" if key == "ddr_fraction" else ""))
        ax.set_ylabel("samples/s")
        ax.set_title(f"MELS-like (T=856, B=1024, d=64): {label}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(IMG / f"screc_{key}.png", dpi=110)
        plt.close(fig)
    b = s["batch_size"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(b["values"], b["deployed"], "o-", label="SCRec, deployed plan")
    ax.plot(b["values"], b["oracle"], "s--", label="SCRec, oracle plan")
    ax.plot(b["values"], b["cpu_measured"], "k^-", label="CPU-DRAM, measured cycles")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples/s")
    ax.set_title("MELS-like (T=856, d=64): batch size", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "screc_batch_size.png", dpi=110)
    plt.close(fig)
    # stage breakdown of the headline runs
    fig, ax = plt.subplots(figsize=(7, 3.6))
    rows = res["mels"]["screc"]
    names = [n for n in rows if "index" not in n]  # index sharding: 4.2 s of NAND, off the scale
    stages = ["sram", "ddr4", "nand", "tt", "pool", "to_host"]
    left = np.zeros(len(names))
    for st in stages:
        v = np.array([1e3 * rows[n]["breakdown"].get(st, 0.0) for n in names])
        ax.barh(range(len(names)), v, left=left, label=st)
        left += v
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([n[:40] for n in names], fontsize=7)
    ax.set_xlabel("ms per batch (slowest device per stage; stages overlap in time)")
    ax.set_title("SCRec stage times, MELS-like 206 GB, B=1024 (index sharding omitted)", fontsize=9)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(IMG / "screc_breakdown.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
