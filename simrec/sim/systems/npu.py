"""Ascend-like NPU system: embedding look-ups of a trace replayed on the SoC's cores under a mapping.

What the model covers
---------------------
* **Mapping**: a :class:`simrec.shard.npu_mapping.NpuMapping` says which row range of which table
  each core serves and with which strategy (GM, L1, GM-UB, L1-UB). ``mapping="symmetric"`` builds
  the compiler-like baseline, ``"asymmetric"`` the MIP mapping planned on the trace itself, a path
  loads a saved mapping.
* **Preload**: tables served from L1 are copied into their core's L1 once, before the first batch
  (``preload_s``; not part of any batch's latency).
* **Per batch**: every part's look-ups are counted from the batch's indices; each core runs its
  parts one after another (strategy formula + output write, :mod:`simrec.sim.components.npu`),
  all cores in parallel, sharing the global-memory bandwidth. The batch ends when the slowest core
  ends.
* **Load**: as for every system (:mod:`simrec.sim.results`).

What it leaves out: the dense MLPs (the NPU study is about the embedding stage), host transfers,
the fine (per-row) granularity, and L2 hits.

:func:`npu_report` produces the machine-readable contract of ``simrec simulate --json`` on an NPU
preset: the result plus ``cores`` (per core: tables, strategies, busy time) and, for
``mapping="both"``, ``speedup_asymmetric_vs_symmetric``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.shard.npu_mapping import (
    NpuMapping,
    NpuTable,
    asymmetric_mapping,
    load_mapping,
    npu_tables_from_trace,
    symmetric_mapping,
)
from simrec.sim.components.npu import NpuParams, NpuSoc, output_cost, strategy_cost
from simrec.sim.results import LoadSpec, SimResult, run_load
from simrec.trace.format import Batch, TraceHeader

__all__ = ["NpuSystem", "plan_mapping", "npu_report", "MAPPINGS"]

MAPPINGS = ("symmetric", "asymmetric", "both")


class NpuSystem:
    """One NPU SoC replaying a trace under a mapping."""

    kind = "npu"

    def __init__(self, params: NpuParams, mapping: NpuMapping, name: str = "npu") -> None:
        if mapping.cores != params.cores:
            raise ConfigError(
                f"the mapping is for {mapping.cores} cores, {params.name} has {params.cores}",
                where="mapping",
                fix="plan the mapping for this NPU",
            )
        self.p = params
        self.mapping = mapping
        self.name = name
        self.core_busy_s = np.zeros(params.cores)
        self.preload_s = 0.0

    @classmethod
    def from_hw(cls, hw: Any, mapping: NpuMapping) -> NpuSystem:
        """Build from a config holding one ``npu`` device."""
        from simrec.hw.npu import load_npu_hw, npu_device

        cfg = load_npu_hw(hw)
        name, dev = npu_device(cfg)
        return cls(dev.to_params(name=name), mapping, name=cfg.name)

    def _tables(self, header: TraceHeader) -> list[tuple[int, int, int, int]]:
        return [
            (int(s.rows), int(s.dim), int(s.bytes_per_row), i) for i, s in enumerate(header.tables)
        ]

    def simulate(
        self,
        batches: Iterable[Batch],
        header: TraceHeader,
        load: LoadSpec | None = None,
        source: str | None = None,
        tables: tuple[NpuTable, ...] | None = None,
    ) -> SimResult:
        """Run the batches; returns a :class:`SimResult` (``counters`` holds ``preload_s``)."""
        wall0 = time.perf_counter()
        p, m = self.p, self.mapping
        names = tuple(s.name for s in header.tables)
        if names != m.table_names:
            raise ConfigError(
                "the mapping's tables are not the trace's tables",
                path=source,
                where="tables",
                fix="plan the mapping on this trace (or one with the same tables)",
            )
        if tables is not None:
            m.validate(tables, p, source)
        meta = self._tables(header)
        nparts = len(m.parts)
        part_tab = np.array([q.table for q in m.parts], dtype=np.int64)
        # per table: sorted cut points and which part each range is
        # (sample-split tables: cuts is empty and each part takes its slice of the bags)
        cuts: list[np.ndarray] = []
        owner: list[np.ndarray] = []
        for t in range(len(meta)):
            ps = sorted(
                (i for i in range(nparts) if part_tab[i] == t),
                key=lambda i: (m.parts[i].lo, m.parts[i].sq),
            )
            sampled = any(m.parts[i].sk > 1 for i in ps)
            cuts.append(np.array([] if sampled else [m.parts[i].lo for i in ps], dtype=np.int64))
            owner.append(np.array(ps, dtype=np.int64))
        order = [[i for i in range(nparts) if m.parts[i].core == c] for c in range(p.cores)]
        # preload (once)
        env0 = simpy.Environment()
        soc0 = NpuSoc(env0, p)
        for c in range(p.cores):
            tasks = []
            for i in order[c]:
                q = m.parts[i]
                rows, dim, rb, _ = meta[q.table]
                cost = strategy_cost(p, q.strategy, 0, (q.hi - q.lo) * rb, rb)
                if cost.preload_s > 0:
                    nbytes = (q.hi - q.lo) * rb
                    tasks.append((cost.preload_s - nbytes / p.mte2_Bps, float(nbytes)))
            if tasks:
                env0.process(soc0.run_core(c, tasks))
        env0.run()
        self.preload_s = float(env0.now)

        env = simpy.Environment()
        soc = NpuSoc(env, p)
        breakdown = {"embedding": 0.0}
        counters = {"gm_bytes": 0.0, "lookups_gm": 0.0, "lookups_l1": 0.0, "lookups_ub": 0.0}
        counters["output_core_s"] = 0.0  # core-seconds of MTE3 output writes, all cores

        def serve(batch: Batch) -> Generator[Any, Any, None]:
            t0 = float(env.now)
            n = np.zeros(nparts)
            bags = np.full(nparts, float(batch.batch_size))
            B = batch.batch_size
            for t in range(len(meta)):
                if len(cuts[t]) == 0:  # sample-split: part sq of sk serves its slice of the bags
                    off = batch.table_offsets(t)
                    for i in owner[t].tolist():
                        q = m.parts[i]
                        b0, b1 = q.sq * B // q.sk, (q.sq + 1) * B // q.sk
                        n[i] = float(off[b1] - off[b0])
                        bags[i] = float(b1 - b0)
                    continue
                idx = np.asarray(batch.table_indices(t))
                if len(idx) == 0:
                    continue
                if len(cuts[t]) == 1:
                    n[owner[t][0]] += len(idx)
                else:
                    k = np.searchsorted(cuts[t], idx, side="right") - 1
                    n[owner[t]] += np.bincount(k, minlength=len(cuts[t]))
            procs = []
            out_s = 0.0
            for c in range(p.cores):
                tasks = []
                for i in order[c]:
                    q = m.parts[i]
                    rows, dim, rb, _ = meta[q.table]
                    cost = strategy_cost(p, q.strategy, n[i], (q.hi - q.lo) * rb, rb)
                    o = output_cost(p, bags[i], dim)
                    out_s += o
                    tasks.append((cost.local_s + o, cost.gm_bytes))
                    counters["gm_bytes"] += cost.gm_bytes
                    key = {"GM": "lookups_gm", "L1": "lookups_l1"}.get(q.strategy, "lookups_ub")
                    counters[key] += float(n[i])
                if tasks:
                    procs.append(env.process(soc.run_core(c, tasks)))
            if procs:
                yield env.all_of(procs)
            breakdown["embedding"] += float(env.now) - t0
            counters["output_core_s"] += out_s

        spec = load or LoadSpec()
        out = run_load(env, batches, serve, spec)
        dur = out.end_s
        util = {}
        for c, srv in enumerate(soc.cores):
            st = srv.stats(dur)
            self.core_busy_s[c] = st.busy_s
            util[srv.name] = st.utilisation
        util[soc.gm.name] = soc.gm.utilisation(dur)
        counters["preload_s"] = self.preload_s
        return SimResult.build(
            system=self.name,
            kind=self.kind,
            mode="fast",
            load=out,
            breakdown_s=breakdown,
            utilisation=util,
            counters=counters,
            wall_s=time.perf_counter() - wall0,
            load_kind=spec.kind,
        )

    def cores_report(self, header: TraceHeader) -> list[dict[str, Any]]:
        """Per core: the table (row ranges) it serves, their strategies, and its busy time."""
        out = []
        for c in range(self.p.cores):
            ps = self.mapping.core_parts(c)
            out.append(
                {
                    "core": c,
                    "tables": [self.mapping.label(q, header.tables[q.table].rows) for q in ps],
                    "strategy": [q.strategy for q in ps],
                    "busy_s": float(self.core_busy_s[c]),
                }
            )
        return out


def plan_mapping(
    kind: str,
    params: NpuParams,
    tables: tuple[NpuTable, ...],
    baseline: str = "count",
    time_limit: float = 20.0,
    solver: str = "highs",
) -> NpuMapping:
    """``symmetric`` (baseline ``count`` or ``rows``, GM) or ``asymmetric`` (the MIP mapper)."""
    sym = symmetric_mapping(tables, params, by=baseline)
    if kind == "symmetric":
        return sym
    if kind == "asymmetric":
        return asymmetric_mapping(
            tables, params, solver=solver, time_limit=time_limit, baseline=sym
        )
    raise ConfigError(
        f"unknown mapping {kind!r}", where="--mapping", fix="use symmetric, asymmetric or both"
    )


def npu_report(
    hw: Any,
    trace: str | Path,
    mapping: str = "asymmetric",
    load: LoadSpec | None = None,
    baseline: str = "count",
    time_limit: float = 20.0,
    solver: str = "highs",
    out_mapping: str | Path | None = None,
) -> tuple[SimResult, dict[str, Any]]:
    """Simulate ``trace`` on an NPU config (path, preset name or config) under ``mapping``
    (``symmetric``, ``asymmetric``, ``both`` or a mapping JSON file).

    Returns the result (for ``both``: the asymmetric one) and the JSON object of
    ``simrec simulate --json``: ``result.to_dict()`` plus ``cores`` and, for ``both``,
    ``symmetric``/``asymmetric`` summaries and ``speedup_asymmetric_vs_symmetric`` (symmetric
    simulated time / asymmetric simulated time). The asymmetric plan is checked by replaying the
    trace: if the replay finds it slower than the symmetric baseline (GM contention the MIP only
    bounds), the baseline's placement is used and ``mapping_note`` says so.
    """
    from simrec.hw.npu import load_npu_hw, npu_device
    from simrec.trace.format import read_trace

    cfg = load_npu_hw(hw)
    name, dev = npu_device(cfg)
    p = dev.to_params(name=name)
    reader = read_trace(trace)
    header = reader.header
    tables = npu_tables_from_trace(reader)

    def run(m: NpuMapping) -> tuple[NpuSystem, SimResult]:
        sysm = NpuSystem(p, m, name=cfg.name)
        return sysm, sysm.simulate(read_trace(trace), header, load, str(trace), tables)

    note = None
    if mapping not in MAPPINGS:
        path = Path(mapping)
        if not path.is_file():
            raise ConfigError(
                f"--mapping {mapping!r} is neither a mapping kind nor a file",
                where="--mapping",
                fix="use symmetric, asymmetric, both, or a mapping JSON from simrec shard",
            )
        m = load_mapping(path)
        m.validate(tables, p, str(path))
        sysm, res = run(m)
        d = res.to_dict()
        d["mapping"] = "file"
        d["cores"] = sysm.cores_report(header)
        return res, d
    sym = plan_mapping("symmetric", p, tables, baseline)
    sys_s, res_s = run(sym)
    if mapping == "symmetric":
        d = res_s.to_dict()
        d["mapping"] = "symmetric"
        d["cores"] = sys_s.cores_report(header)
        if out_mapping:
            sym.save(out_mapping)
        return res_s, d
    asym = asymmetric_mapping(tables, p, solver=solver, time_limit=time_limit, baseline=sym)
    sys_a, res_a = run(asym)
    if res_a.sim_time_s > res_s.sim_time_s:
        note = (
            f"the MIP plan replayed at {res_a.sim_time_s:.6g} s, slower than the baseline's "
            f"{res_s.sim_time_s:.6g} s; the baseline placement is used"
        )
        asym = NpuMapping("asymmetric", sym.cores, sym.parts, sym.table_names, sym.estimate_s)
        asym.record = {"note": note}
        sys_a, res_a = run(asym)
    if out_mapping:
        asym.save(out_mapping)
    d = res_a.to_dict()
    d["mapping"] = "asymmetric"
    d["cores"] = sys_a.cores_report(header)
    d["mapping_record"] = asym.record
    if note:
        d["mapping_note"] = note
    if mapping == "both":
        d["mapping"] = "both"
        d["symmetric"] = {**res_s.to_dict(), "cores": sys_s.cores_report(header)}
        d["asymmetric"] = {k: v for k, v in d.items() if k not in ("symmetric", "mapping")}
        d["speedup_asymmetric_vs_symmetric"] = (
            res_s.sim_time_s / res_a.sim_time_s if res_a.sim_time_s > 0 else float("nan")
        )
    return res_a, d


# --------------------------------------------------------------------------------------------------
# CLI bodies (the `simrec simulate` and `simrec shard` commands call these for NPU configs)
# --------------------------------------------------------------------------------------------------


def has_npu(hw: Any) -> bool:
    """Whether a hardware file/preset/config holds an ``npu`` device (for ``--system auto``)."""
    from simrec.hw.npu import load_npu_hw

    cfg = load_npu_hw(hw)
    return any(getattr(d, "kind", None) == "npu" for d in cfg.devices.values())


def format_cores(cores: list[dict[str, Any]], limit: int = 64) -> str:
    """A plain-text table of the per-core mapping and busy time."""
    lines = [f"{'core':>4}  {'busy':>12}  tables (strategy)"]
    for c in cores[:limit]:
        what = ", ".join(f"{t} ({s})" for t, s in zip(c["tables"], c["strategy"], strict=True))
        lines.append(f"{c['core']:>4}  {c['busy_s'] * 1e6:>9.1f} us  {what or '-'}")
    if len(cores) > limit:
        lines.append(f"... {len(cores) - limit} more cores")
    return "\n".join(lines)


def simulate_npu_cli(
    hw: Any,
    trace: str | Path,
    mapping: str | None,
    load: LoadSpec | None,
    as_json: bool,
    out: str | Path | None = None,
    time_limit: float = 20.0,
    mode: str = "fast",
) -> dict[str, Any]:
    """Body of ``simrec simulate`` for an NPU config: simulate, write ``--out`` files, print the
    summary table (or the JSON object with ``cores`` and, for ``both``, the speedup)."""
    import click

    if mode != "fast":
        raise ConfigError(
            f"the npu system has no {mode!r} granularity",
            where="--mode",
            fix="use --mode fast (transaction level: one event per table part and core)",
        )

    from simrec.cli import echo_json
    from simrec.sim.cli import format_summary

    res, d = npu_report(
        hw, trace, mapping=mapping or "asymmetric", load=load, time_limit=time_limit
    )
    if out is not None:
        res.write(out)
    if as_json:
        echo_json(d)
        return d
    click.echo(format_summary(res))
    click.echo(f"mapping     {d['mapping']}")
    click.echo(format_cores(d["cores"]))
    if "speedup_asymmetric_vs_symmetric" in d:
        click.echo(
            f"speedup     asymmetric vs symmetric: {d['speedup_asymmetric_vs_symmetric']:.3f}x "
            f"({d['symmetric']['sim_time_s'] * 1e3:.4g} ms -> {d['sim_time_s'] * 1e3:.4g} ms)"
        )
    return d


def npu_shard(
    hw: Any,
    trace: str | Path,
    solve: bool = True,
    time_limit: float = 20.0,
    gap: float = 1e-3,
    solver: str = "highs",
    baseline: str = "count",
    output: str | Path | None = None,
) -> tuple[NpuMapping, dict[str, Any]]:
    """Plan the mapping of ``trace``'s tables onto the NPU's cores: the MIP (``solve``) or the
    greedy heuristic alone; returns the mapping and the ``simrec shard --json`` object (status,
    objective, bound, gap, solve time, sizes, the baselines' estimates, per-core parts)."""
    from simrec.hw.npu import load_npu_hw, npu_device
    from simrec.shard.npu_mapping import estimate, greedy_mapping
    from simrec.trace.format import read_trace

    cfg = load_npu_hw(hw)
    name, dev = npu_device(cfg)
    p = dev.to_params(name=name)
    tables = npu_tables_from_trace(read_trace(trace))
    t0 = time.perf_counter()
    sym = symmetric_mapping(tables, p, by=baseline)
    if solve:
        m = asymmetric_mapping(
            tables, p, solver=solver, time_limit=time_limit, gap=gap, baseline=sym
        )
        rec = dict(m.record)
    else:
        g = greedy_mapping(tables, p)
        best = g if g.estimate_s <= sym.estimate_s else sym
        m = NpuMapping("asymmetric", p.cores, best.parts, best.table_names, best.estimate_s)
        rec = {"solver": "heuristic:greedy", "status": "Heuristic", "chosen": best.kind}
        m.record = rec
    rows = {
        "symmetric-count": symmetric_mapping(tables, p, "count").estimate_s,
        "symmetric-rows": symmetric_mapping(tables, p, "rows").estimate_s,
    }
    core_s, _ = estimate(m, tables, p)
    if output:
        m.save(output)
    summary = {
        "system": cfg.name,
        "cores": p.cores,
        "status": rec.get("status"),
        "solver": rec.get("solver"),
        "objective_s": m.estimate_s,
        "bound_s": rec.get("bound_s"),
        "gap": rec.get("gap"),
        "solve_time_s": time.perf_counter() - t0,
        "num_variables": rec.get("num_variables", 0),
        "num_constraints": rec.get("num_constraints", 0),
        "makespan_s": m.estimate_s,
        "device_s": [float(v) for v in core_s],
        "heuristics": {**rows, "greedy": rec.get("greedy_estimate_s")},
        "speedup_vs_symmetric_estimate": sym.estimate_s / m.estimate_s if m.estimate_s else None,
        "plan": str(output) if output else None,
        "parts": m.to_dict()["parts"],
    }
    return m, summary


def npu_shard_cli(
    hw: Any,
    trace: str | Path,
    solve: bool,
    time_limit: float,
    gap: float,
    solver: str,
    output: str | None,
    as_json: bool,
) -> dict[str, Any]:
    """Body of ``simrec shard`` for an NPU config: plan, write ``-o``, print a summary or JSON."""
    import click

    from simrec.cli import echo_json

    m, d = npu_shard(hw, trace, solve, time_limit, gap, solver, output=output)
    if as_json:
        echo_json(d)
        return d
    click.echo(
        f"problem   {len(m.table_names)} tables x {d['cores']} cores; solver {d['solver']} "
        f"status {d['status']}  time {d['solve_time_s']:.2f} s"
    )
    gap_txt = "-" if d["gap"] is None else f"{100 * d['gap']:.2f} %"
    click.echo(f"makespan  {d['makespan_s'] * 1e6:.2f} us per batch (cost model), gap {gap_txt}")
    for k, v in d["heuristics"].items():
        if v:
            click.echo(f"{k:<16} {v * 1e6:>10.2f} us  {v / d['makespan_s']:.2f}x")
    split = sum(1 for t in range(len(m.table_names)) if len(m.parts_of(t)) > 1)
    click.echo(f"parts     {len(m.parts)} ({split} tables split)")
    if output:
        click.echo(f"plan      {output}")
    return d
