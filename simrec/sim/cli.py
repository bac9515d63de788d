"""``simrec simulate``: run a trace through a hardware config and report throughput and latency.

The command is a thin layer over :func:`simulate` (Python API): load the hardware YAML, open the
trace (memory-mapped, batch by batch), optionally load a sharding plan, pick the system model
(``screc`` when the config has ``csd`` devices, ``multi_gpu`` when it has GPUs, else ``cpu_dram``),
simulate, print a summary table or one JSON object (``--json``), and write ``result.json``,
``batches.csv`` and ``batches.parquet`` under ``--out``.

For an SCRec config the JSON adds ``devices`` (per CSD: utilisation of NAND, DDR4, on-chip SRAM and
each core type, placement summary, counters) and ``energy``; ``--baseline HW`` (repeatable)
simulates the same trace on each baseline and adds ``baselines``, ``speedup_vs`` (samples/s ratio)
and ``energy_efficiency_vs`` (samples per joule ratio, whole-server boundary) keyed by baseline
system name; ``--ablation`` (repeatable: ``no-tt``, ``no-stat-sharding``, ``uniform-cores``)
re-runs the system with that part removed and adds ``ablations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from simrec.errors import ConfigError, did_you_mean
from simrec.sim.results import LoadSpec, QuerySizes, SimResult

__all__ = [
    "ABLATIONS",
    "simulate",
    "simulate_command",
    "format_summary",
    "parse_query_sizes",
    "parse_screc_options",
    "compare",
]

#: ``--ablation`` name -> the :class:`~simrec.sim.systems.screc.ScrecConfig` fields it sets.
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-tt": {"tt_policy": "none"},
    "no-stat-sharding": {"sharding": "index"},
    "uniform-cores": {"plan_cores": False},
}


def parse_screc_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (values read as YAML scalars) -> ScrecConfig overrides."""
    import dataclasses

    import yaml

    from simrec.sim.systems.screc import ScrecConfig

    ok = [f.name for f in dataclasses.fields(ScrecConfig) if f.name not in ("device", "host_cpu")]
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"cannot read {item!r}", where="--screc", fix="write KEY=VALUE, e.g. tt_rank=8"
            )
        k, v = (x.strip() for x in item.split("=", 1))
        if k not in ok:
            raise ConfigError(
                f"unknown SCRec option {k!r}",
                where="--screc",
                fix=did_you_mean(k, ok, form="did you mean {}? ") + "valid: " + ", ".join(ok),
            )
        try:
            out[k] = yaml.safe_load(v)
        except yaml.YAMLError:
            out[k] = v
    return out


def parse_query_sizes(text: str) -> QuerySizes:
    """``64`` or ``fixed:64``; ``lognormal:MEDIAN:SIGMA``; ``empirical:FILE`` (one size a line)."""
    parts = text.split(":")
    fix = "use N, fixed:N, lognormal:MEDIAN:SIGMA or empirical:FILE"
    try:
        if len(parts) == 1:
            return QuerySizes("fixed", size=int(parts[0]))
        kind = parts[0]
        if kind == "fixed" and len(parts) == 2:
            return QuerySizes("fixed", size=int(parts[1]))
        if kind == "lognormal" and len(parts) == 3:
            return QuerySizes("lognormal", size=int(parts[1]), sigma=float(parts[2]))
        if kind == "empirical" and len(parts) >= 2:
            path = Path(":".join(parts[1:]))
            if not path.is_file():
                raise ConfigError(
                    "query-size file not found", path=path, fix="give a file of sizes, one a line"
                )
            vals = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    try:
                        vals.append(int(line.split()[0]))
                    except ValueError:
                        raise ConfigError(
                            f"{line.strip()!r} is not an integer size",
                            path=path,
                            where=f"line {n}",
                            fix="write one positive integer per line",
                        ) from None
            return QuerySizes("empirical", values=tuple(vals))
    except ValueError:
        pass
    raise ConfigError(f"cannot read query sizes {text!r}", where="--query-size", fix=fix)


def simulate(
    hw: str | Path | Any,
    trace: str | Path,
    plan: str | Path | None = None,
    mode: str = "fast",
    system: str = "auto",
    model: str | None = None,
    sharding: str = "table",
    load: LoadSpec | None = None,
    dedupe: bool = True,
    screc_options: dict[str, Any] | None = None,
    uvm_cache: str | None = None,
    overlap_bottom_mlp: bool = True,
) -> SimResult:
    """Simulate ``trace`` on ``hw`` (a YAML path, a preset name or a ``SystemConfig``).

    ``screc_options`` sets :class:`~simrec.sim.systems.screc.ScrecConfig` fields of an SCRec
    system; its result carries ``devices`` (and ``energy``) in ``extra``."""
    from simrec.hw import load_hw
    from simrec.trace.format import read_trace
    from simrec.workloads.dlrm import get_model

    cfg = hw if hasattr(hw, "devices_of_kind") else load_hw(hw)
    reader = read_trace(trace)
    header = reader.header
    m = get_model(model) if model else None
    kind = system
    if kind == "auto":
        if cfg.devices_of_kind("csd"):
            kind = "screc"
        else:
            kind = "multi_gpu" if cfg.devices_of_kind("gpu") else "cpu_dram"
    plan_obj = None
    if plan is not None:
        from simrec.shard.plan import load_plan

        names = list(cfg.devices_of_kind("csd")) if kind == "screc" else list(cfg.devices)
        plan_obj = load_plan(plan, hw_device_names=names, trace_header=header)
    if kind == "screc":
        from simrec.sim.systems.screc import PlanPlacement, ScrecSystem

        ss = ScrecSystem.from_hw(cfg, mode=mode, model=m, overrides=screc_options)  # type: ignore[arg-type]
        placement = None
        if plan_obj is not None:
            placement = PlanPlacement(plan_obj, header)
            first = list(placement.remap.devices)
            ss.device_names = first + [n for n in ss.device_names if n not in first]
        res = ss.simulate(reader, header, load, source=str(trace), placement=placement)
        res.extra["energy"] = _energy_summary(screc_energy(res, cfg, ss.cfg.n_devices))
        return res
    if screc_options:
        raise ConfigError(
            "--screc options apply only to an SCRec system (a config with csd devices)",
            where="--screc",
            fix="drop --screc, or simulate hwconfigs/screc.yaml",
        )
    if kind == "cpu_dram":
        from simrec.sim.systems.cpu_dram import CpuDramSystem

        if plan_obj is not None:
            raise ConfigError(
                "the cpu_dram system places whole tables itself and does not read a plan",
                path=plan,
                fix="drop --plan, or simulate a multi_gpu config",
            )
        sim = CpuDramSystem.from_hw(cfg, mode=mode, model=m, dedupe=dedupe)  # type: ignore[arg-type]
    elif kind == "multi_gpu":
        from simrec.sim.systems.multi_gpu import MultiGpuSystem

        sim = MultiGpuSystem.from_hw(
            cfg,
            model=m,
            sharding=sharding,  # type: ignore[arg-type]
            plan=plan_obj,
            mode=mode,
            uvm_cache=uvm_cache,
            overlap_bottom_mlp=overlap_bottom_mlp,
        )
    else:
        raise ConfigError(
            f"unknown system {system!r}",
            where="--system",
            fix="use auto, cpu_dram, multi_gpu or screc",
        )
    return sim.simulate(reader, header, load, source=str(trace))


def screc_energy(res: SimResult, hw: Any, n_devices: int) -> Any:
    """Energy of an SCRec result: the SmartSSD table (``simrec/energy/smartssd.yaml``) for the
    devices, the host devices' ``energy`` blocks of ``hw`` (CSDs and their links removed, so the
    devices are not counted twice) for the rest of the server."""
    from simrec.energy import estimate_energy, smartssd_table, table_from_hw

    host = host_config(hw)
    table = smartssd_table(n_devices).merged(table_from_hw(host))
    return estimate_energy(res, table, host, n_devices=n_devices)


def host_config(hw: Any) -> Any:
    """``hw`` without its csd devices and the links that touch them (the rest of the server)."""
    csds = set(hw.devices_of_kind("csd"))

    def nodes(lk: Any) -> set[str]:
        return set(lk.endpoints if lk.kind == "pcie" else lk.nodes)

    links = {n: lk for n, lk in hw.links.items() if not nodes(lk) & csds}
    devices = {n: d for n, d in hw.devices.items() if n not in csds}
    return hw.model_copy(update={"devices": devices, "links": links})


def _energy_summary(est: Any) -> dict[str, Any]:
    s = est.summary()
    return {k: v for k, v in s.items()}


def _energy_of(res: SimResult, hw: Any) -> Any:
    from simrec.energy import estimate_energy, table_from_hw

    return estimate_energy(res, table_from_hw(hw), hw)


def compare(
    res: SimResult,
    trace: str | Path,
    baselines: list[str] | tuple[str, ...],
    mode: str = "fast",
    model: str | None = None,
    load: LoadSpec | None = None,
    dedupe: bool = True,
) -> dict[str, Any]:
    """Simulate ``trace`` on each baseline config and compare with ``res`` (an SCRec result that
    carries ``extra["energy"]``).

    Returns ``baselines`` (per baseline: system kind, samples/s, J/sample on the device and
    whole-server boundaries, the breakdown), ``speedup_vs`` (SCRec samples/s over the
    baseline's) and ``energy_efficiency_vs`` (SCRec samples/J over the baseline's, whole-server
    boundary; ``energy_efficiency_vs_device``: device-only boundary), keyed by the baseline's
    system name. Energy comes from :mod:`simrec.energy` (each config's ``energy`` blocks; the
    SmartSSD table for SCRec)."""
    from simrec.hw import load_hw

    mine = res.extra.get("energy") or {}
    out: dict[str, Any] = {
        "baselines": {},
        "speedup_vs": {},
        "energy_efficiency_vs": {},
        "energy_efficiency_vs_device": {},
    }
    for b in baselines:
        cfg = load_hw(b)
        if cfg.devices_of_kind("csd"):
            raise ConfigError(
                "a baseline must be a cpu_dram or multi_gpu config, not another SCRec system",
                path=getattr(cfg, "source", None) or b,
                where="--baseline",
                fix="name e.g. hwconfigs/cpu_dram.yaml or hwconfigs/multi_gpu.yaml",
            )
        name = cfg.name
        if name in out["baselines"]:
            raise ConfigError(
                f"two baselines are named {name!r}", where="--baseline", fix="name each once"
            )
        r = simulate(cfg, trace, mode=mode, model=model, load=load, dedupe=dedupe)
        est = _energy_of(r, cfg)
        e = est.summary()
        out["baselines"][name] = {
            "kind": r.kind,
            "source": str(b),
            "samples_per_s": r.samples_per_s,
            "sim_time_s": r.sim_time_s,
            "breakdown_s": r.breakdown_s,
            "energy": e,
        }
        out["speedup_vs"][name] = res.samples_per_s / r.samples_per_s if r.samples_per_s else None

        def ratio(key: str, e: dict[str, Any] = e) -> float | None:
            a, bb = mine.get(key), e.get(key)
            return bb / a if a and bb else None  # J/sample: baseline over SCRec

        out["energy_efficiency_vs"][name] = ratio("server_j_per_sample")
        out["energy_efficiency_vs_device"][name] = ratio("device_j_per_sample")
    return out


def _fmt_s(x: float) -> str:
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(x) >= k:
            return f"{x / k:.3f} {unit}"
    return f"{x:.3g} s"


def format_summary(r: SimResult) -> str:
    """A plain-text summary table of a result."""
    lines = [
        f"system      {r.system} ({r.kind}, {r.mode} mode, {r.load} load)",
        f"trace       {r.batches} batches, {r.samples:,} samples, {r.lookups:,} lookups",
        f"sim time    {_fmt_s(r.sim_time_s)}",
        f"throughput  {r.samples_per_s:,.0f} samples/s, {r.lookups_per_s:,.0f} lookups/s",
        "latency     "
        + ", ".join(f"{k} {_fmt_s(r.latency_s[k])}" for k in ("mean", "p50", "p95", "p99")),
        "breakdown   (seconds per stage, summed over batches)",
    ]
    for k, v in r.breakdown_s.items():
        lines.append(f"  {k:<18} {_fmt_s(v)}")
    lines.append("utilisation")
    for k, v in r.utilisation.items():
        lines.append(f"  {k:<18} {100 * v:6.1f} %")
    lines.append(
        f"wall time   {r.wall_s:.3f} s ({r.lookups / max(r.wall_s, 1e-12):,.0f} lookups/s)"
    )
    x = r.extra
    if "devices" in x:
        lines.append(
            "devices     utilisation: nand, ddr4, sram, emb/tt/mlp cores, host link; placement"
        )
        for d in x["devices"]:
            u = d["utilisation"]
            pl = d.get("placement", {})
            lines.append(
                f"  {d['name']:<8} nand {100 * u['nand']:5.1f} %  ddr4 {100 * u['ddr4']:5.1f} %  "
                f"sram {100 * u['sram']:5.1f} %  emb {100 * u['emb_cores']:5.1f} %  "
                f"tt {100 * u['tt_cores']:5.1f} %  mlp {100 * u['mlp_cores']:5.1f} %  "
                f"link {100 * u['host_link']:5.1f} %  "
                f"tables {pl.get('tables', 0):.0f} (TT {pl.get('tt_tables', 0):.0f})"
                + (
                    f"  cores {pl['emb_cores']:.0f} EMB/{pl['tt_cores']:.0f} TT/"
                    f"{pl['mlp_cores']:.0f} MLP"
                    if "emb_cores" in pl
                    else ""
                )
            )
    if "energy" in x:
        e = x["energy"]
        lines.append(
            f"energy      {e['server_j_per_sample'] * 1e6:,.3f} uJ/sample whole server, "
            f"{e['device_j_per_sample'] * 1e6:,.3f} uJ/sample SmartSSDs only (simrec.energy)"
        )
    for name, b in x.get("baselines", {}).items():
        sp = x["speedup_vs"].get(name)
        ee = x["energy_efficiency_vs"].get(name)
        lines.append(
            f"vs {name:<10} {b['samples_per_s']:,.0f} samples/s ({b['kind']}): speedup "
            f"{sp:.3g}x, energy efficiency {ee:.3g}x (samples/J, whole server)"
            if sp is not None and ee is not None
            else f"vs {name:<10} {b['samples_per_s']:,.0f} samples/s ({b['kind']})"
        )
    for name, a in x.get("ablations", {}).items():
        lines.append(
            f"ablation {name:<17} {a['samples_per_s']:,.0f} samples/s "
            f"({a['slowdown']:.3g}x slower than the full system)"
        )
    return "\n".join(lines)


@click.command("simulate")
@click.option("--hw", "hw", required=True, help="hardware YAML file or preset name (cpu_dram, ...)")
@click.option(
    "--trace",
    "trace",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=".trc trace to replay",
)
@click.option("--plan", type=click.Path(dir_okay=False, path_type=Path), help="sharding plan JSON")
@click.option("--mode", type=click.Choice(["fast", "fine"]), default="fast", show_default=True)
@click.option(
    "--system",
    type=click.Choice(["auto", "npu", "cpu_dram", "multi_gpu", "screc"]),
    default="auto",
    show_default=True,
    help="system model; auto = screc if the config has csd devices, multi_gpu if it has GPUs",
)
@click.option(
    "--model", default=None, help="DLRM model for the dense stage (e.g. rm1, dlrm-criteo-kaggle)"
)
@click.option("--sharding", type=click.Choice(["table", "row"]), default="table", show_default=True)
@click.option(
    "--load", "load_kind", type=click.Choice(["throughput", "latency"]), default="throughput"
)
@click.option("--rate", type=float, default=None, help="latency load: batches per second (Poisson)")
@click.option("--trace-arrivals", is_flag=True, help="latency load: use the trace's arrival times")
@click.option(
    "--inflight", type=int, default=1, show_default=True, help="throughput load: batches in flight"
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the arrival process")
@click.option(
    "--query-size",
    default=None,
    help="re-cut samples into queries: N, lognormal:MEDIAN:SIGMA or empirical:FILE",
)
@click.option("--max-batches", type=int, default=None, help="simulate only the first N batches")
@click.option("--no-dedupe", is_flag=True, help="cpu_dram: read repeated rows of a batch again")
@click.option(
    "--uvm-cache",
    default=None,
    help="multi_gpu: HBM row cache in front of host-DRAM tables: none, lru:ROWS or lru:SHARE "
    "(e.g. lru:0.1 or lru:10% of the HBM the GPU's bands leave free)",
)
@click.option(
    "--no-bottom-overlap",
    is_flag=True,
    help="multi_gpu: run the bottom MLP after the all-to-all, not overlapped with the embeddings",
)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    help="SCRec: also simulate this hardware config (repeatable) and report speedup_vs and "
    "energy_efficiency_vs",
)
@click.option(
    "--ablation",
    "ablations",
    multiple=True,
    type=click.Choice(list(ABLATIONS)),
    help="SCRec: also run without TT, without statistical sharding or with uniform cores "
    "(repeatable)",
)
@click.option(
    "--screc",
    "screc_opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="SCRec option (ScrecConfig field), e.g. tt_rank=8, mlp_on=host, ddr_fraction=0.5",
)
@click.option(
    "--mapping",
    default=None,
    help="NPU configs: symmetric, asymmetric (default), both, or a mapping JSON (simrec shard -o)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of the table")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="write result files here"
)
def simulate_command(
    hw: str,
    trace: Path,
    plan: Path | None,
    mode: str,
    system: str,
    model: str | None,
    sharding: str,
    load_kind: str,
    rate: float | None,
    trace_arrivals: bool,
    inflight: int,
    seed: int,
    query_size: str | None,
    max_batches: int | None,
    no_dedupe: bool,
    uvm_cache: str | None,
    no_bottom_overlap: bool,
    baselines: tuple[str, ...],
    ablations: tuple[str, ...],
    screc_opts: tuple[str, ...],
    mapping: str | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """Simulate a trace on a hardware config; print throughput, latency percentiles, breakdown."""
    from simrec.cli import echo_json

    load = LoadSpec(
        kind=load_kind,  # type: ignore[arg-type]
        inflight=inflight,
        rate_per_s=rate,
        seed=seed,
        use_trace_arrivals=trace_arrivals,
        max_batches=max_batches,
        query_sizes=parse_query_sizes(query_size) if query_size else None,
    )
    from simrec.sim.systems.npu import has_npu, simulate_npu_cli

    if system in ("auto", "npu") and has_npu(hw):
        simulate_npu_cli(hw, trace, mapping, load, as_json, out, mode=mode)
        return
    if mapping is not None or system == "npu":
        raise ConfigError(
            "--mapping and --system npu need a config with an npu device",
            where="--mapping/--system",
            fix="use an NPU preset (ascend910, ascend910b) or drop the option",
        )
    opts = parse_screc_options(screc_opts) if screc_opts else None
    res = simulate(
        hw,
        trace,
        plan=plan,
        mode=mode,
        system=system,
        model=model,
        sharding=sharding,
        load=load,
        dedupe=not no_dedupe,
        screc_options=opts,
        uvm_cache=uvm_cache,
        overlap_bottom_mlp=not no_bottom_overlap,
    )
    if (baselines or ablations) and res.kind != "screc":
        raise ConfigError(
            "--baseline and --ablation compare an SCRec system with others, but this config "
            f"is simulated as {res.kind}",
            where="--baseline/--ablation",
            fix="simulate an SCRec config (csd devices, e.g. hwconfigs/screc.yaml)",
        )
    if ablations:
        abl: dict[str, Any] = {}
        for a in dict.fromkeys(ablations):
            r = simulate(
                hw,
                trace,
                plan=plan,
                mode=mode,
                system=system,
                model=model,
                load=load,
                screc_options={**(opts or {}), **ABLATIONS[a]},
            )
            abl[a] = {
                "options": ABLATIONS[a],
                "samples_per_s": r.samples_per_s,
                "slowdown": res.samples_per_s / r.samples_per_s if r.samples_per_s else None,
                "breakdown_s": r.breakdown_s,
                "server_j_per_sample": r.extra["energy"]["server_j_per_sample"],
            }
        res.extra["ablations"] = abl
    if baselines:
        res.extra.update(
            compare(res, trace, baselines, mode=mode, model=model, load=load, dedupe=not no_dedupe)
        )
    if out is not None:
        res.write(out)
    if as_json:
        echo_json(res.to_dict())
    else:
        click.echo(format_summary(res))
