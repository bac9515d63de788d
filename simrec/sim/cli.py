"""``simrec simulate``: run a trace through a hardware config and report throughput and latency.

The command is a thin layer over :func:`simulate` (Python API): load the hardware YAML, open the
trace (memory-mapped, batch by batch), optionally load a sharding plan, pick the system model
(``multi_gpu`` when the config has GPUs, else ``cpu_dram``), simulate, print a summary table or one
JSON object (``--json``), and write ``result.json``, ``batches.csv`` and ``batches.parquet`` under
``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from simrec.errors import ConfigError
from simrec.sim.results import LoadSpec, QuerySizes, SimResult

__all__ = ["simulate", "simulate_command", "format_summary", "parse_query_sizes"]


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
) -> SimResult:
    """Simulate ``trace`` on ``hw`` (a YAML path, a preset name or a ``SystemConfig``)."""
    from simrec.hw import load_hw
    from simrec.trace.format import read_trace
    from simrec.workloads.dlrm import get_model

    cfg = hw if hasattr(hw, "devices_of_kind") else load_hw(hw)
    reader = read_trace(trace)
    header = reader.header
    m = get_model(model) if model else None
    kind = system
    if kind == "auto":
        kind = "multi_gpu" if cfg.devices_of_kind("gpu") else "cpu_dram"
    plan_obj = None
    if plan is not None:
        from simrec.shard.plan import load_plan

        plan_obj = load_plan(plan, hw_device_names=list(cfg.devices), trace_header=header)
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

        sim = MultiGpuSystem.from_hw(cfg, model=m, sharding=sharding, plan=plan_obj, mode=mode)  # type: ignore[arg-type]
    else:
        raise ConfigError(
            f"unknown system {system!r}", where="--system", fix="use auto, cpu_dram or multi_gpu"
        )
    return sim.simulate(reader, header, load, source=str(trace))


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
    type=click.Choice(["auto", "cpu_dram", "multi_gpu"]),
    default="auto",
    show_default=True,
    help="system model; auto = multi_gpu if the config has GPUs",
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
    )
    if out is not None:
        res.write(out)
    if as_json:
        echo_json(res.to_dict())
    else:
        click.echo(format_summary(res))
