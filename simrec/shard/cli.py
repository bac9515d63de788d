"""``simrec shard``: plan a trace's tables onto a system's devices and tiers (MIP or heuristics).

The command is a thin layer over :func:`simrec.shard.mip.solve` and
:func:`simrec.shard.heuristics.run_heuristics`. ``--json`` prints the machine-readable contract
(``status``, ``objective_s``, ``bound_s``, ``gap``, ``solve_time_s``, ``num_variables``,
``num_constraints``, ``heuristics``); ``-o`` writes a versioned plan file (simrec.shard.plan).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from simrec.errors import ConfigError

__all__ = ["shard_command", "load_problem"]


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file-descriptor-level stdout to stderr (HiGHS prints a banner from C)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    try:
        os.dup2(sys.stderr.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def load_problem(
    hw: str | None,
    csd: int | None,
    trace: str | None,
    synthetic: int | None,
    seed: int = 0,
    batch_size: int | None = None,
    tt: bool = True,
    tt_rank: int = 8,
    energy_weight: float = 0.0,
    fine_tables: int | None = None,
) -> Any:
    """Build the :class:`~simrec.shard.problem.ShardProblem` from CLI-style inputs
    (``fine_tables``: None = the automatic finer-breakpoint rule, 0 = off, N = the N largest)."""
    from simrec.shard.problem import (
        ShardProblem,
        devices_from_hw,
        devices_from_smartssd,
        synthetic_tables,
        tables_from_profile,
    )

    if (hw is None) == (csd is None):
        raise ConfigError(
            "give exactly one of --hw and --csd",
            where="--hw/--csd",
            fix="--hw FILE.yaml (or a preset: cpu_dram, multi_gpu) or --csd N for N SmartSSD-like "
            "devices",
        )
    if (trace is None) == (synthetic is None):
        raise ConfigError(
            "give exactly one of --trace and --synthetic",
            where="--trace/--synthetic",
            fix="--trace T.trc (profiled with simrec trace stats) or --synthetic N tables",
        )
    if csd is not None:
        if csd < 1:
            raise ConfigError("--csd must be >= 1", where="--csd", fix="give a device count")
        devices = devices_from_smartssd(csd)
    else:
        from simrec.hw import load_hw

        devices = devices_from_hw(load_hw(hw))
    ranks = (tt_rank, tt_rank)
    if trace is not None:
        from simrec.trace.stats import profile_trace

        prof = profile_trace(trace, stack_distance=False)
        tables, bs = tables_from_profile(prof, batch_size=batch_size, tt_ranks=ranks, tt_allowed=tt)
    else:
        bs = batch_size or 4096
        tables = synthetic_tables(int(synthetic or 0), seed=seed, batch_size=bs)
        if not tt or ranks != (8, 8):
            from dataclasses import replace

            tables = tuple(replace(t, tt_allowed=tt, tt_ranks=ranks) for t in tables)
    return ShardProblem(
        tables=tuple(tables),
        devices=devices,
        batch_size=int(bs),
        energy_weight=energy_weight,
        allow_tt=tt,
        fine_tables=fine_tables,
    )


def _fmt_s(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 1:
        return f"{x:.4g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.4g} ms"
    return f"{x * 1e6:.4g} us"


@click.command("shard")
@click.option("--hw", "hw", help="Hardware YAML file or preset name (cpu_dram, multi_gpu).")
@click.option(
    "--csd", type=int, help="Instead of --hw: N SmartSSD-like devices (simulator defaults)."
)
@click.option(
    "--trace", "trace", type=click.Path(dir_okay=False), help="The .trc trace to profile."
)
@click.option("--synthetic", type=int, help="Instead of --trace: N MELS-like synthetic tables.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed (synthetic, random).")
@click.option("--batch-size", type=int, help="Batch size to plan for (default: the trace's).")
@click.option("--solve", is_flag=True, help="Solve the MIP (else only the heuristics run).")
@click.option("--solver", default="highs", show_default=True, help="highs or cbc.")
@click.option("--time-limit", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--gap", type=float, default=1e-4, show_default=True, help="Relative gap target.")
@click.option(
    "--strategy", default="auto", show_default=True, help="auto, full (one MIP) or lns (large)."
)
@click.option("--heuristic", default="all", show_default=True, help="A heuristic name or 'all'.")
@click.option(
    "--energy-weight", type=float, default=0.0, help="Seconds per joule in the objective."
)
@click.option("--tt/--no-tt", default=True, show_default=True, help="Allow TT storage.")
@click.option("--tt-rank", type=int, default=8, show_default=True, help="TT rank (both ranks).")
@click.option(
    "--fine-tables",
    type=click.IntRange(min=0),
    default=None,
    help="Tables given the finer access CDF (61 breakpoints): default the automatic rule "
    "(tables of >= 1/4 of the smallest fast tier, within a 30 % option budget), 0 = none, "
    "N = the N largest.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the plan JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option(
    "--row-order",
    type=click.Choice(["inline", "runtime"]),
    default="inline",
    show_default=True,
    help="With --trace: write each table's touched rows, hottest first, into the plan (inline), "
    "or leave the ranking to be computed at run time.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Replay the plan in the simulator and report predicted vs simulated time (multi_gpu).",
)
def shard_command(
    hw: str | None,
    csd: int | None,
    trace: str | None,
    synthetic: int | None,
    seed: int,
    batch_size: int | None,
    solve: bool,
    solver: str,
    time_limit: float,
    gap: float,
    strategy: str,
    heuristic: str,
    energy_weight: float,
    tt: bool,
    tt_rank: int,
    fine_tables: int | None,
    output: str | None,
    as_json: bool,
    row_order: str,
    verify: bool,
) -> None:
    """Place every table's rows on devices and tiers (raw or TT), and pick core configurations.

    \b
    Examples:
      simrec shard --hw multi_gpu --trace t.trc --solve --json
      simrec shard --csd 4 --synthetic 100 --solve --time-limit 60 -o plan.json
      simrec shard --hw cpu_dram --trace t.trc --heuristic size_greedy
    """
    from simrec.cli import echo_json
    from simrec.shard.heuristics import HEURISTICS, run_heuristics
    from simrec.shard.mip import (
        SOLVERS,
        ShardResult,
        SolveRecord,
        result_plan,
    )
    from simrec.shard.mip import (
        solve as mip_solve,
    )
    from simrec.shard.problem import build_options, check_feasibility

    if solver.lower() not in SOLVERS:
        raise ConfigError(
            f"unknown solver {solver!r}", where="--solver", fix=f"use one of {', '.join(SOLVERS)}"
        )
    names = list(HEURISTICS) if heuristic == "all" else [heuristic]
    for n in names:
        if n not in HEURISTICS:
            raise ConfigError(
                f"unknown heuristic {n!r}",
                where="--heuristic",
                fix=f"use one of {', '.join(HEURISTICS)} or 'all'",
            )
    if time_limit <= 0 or not (0 <= gap < 1):
        raise ConfigError(
            "--time-limit must be > 0 and --gap in [0, 1)",
            where="--time-limit/--gap",
            fix="e.g. --time-limit 60 --gap 0.01",
        )
    if verify:
        _check_verifiable(hw, trace)
    if hw is not None:
        from simrec.sim.systems.npu import has_npu, npu_shard_cli

        if has_npu(hw):
            if trace is None:
                raise ConfigError(
                    "an NPU mapping is planned from a trace",
                    where="--trace",
                    fix="give --trace T.trc (simrec trace gen ...)",
                )
            npu_shard_cli(hw, trace, solve, time_limit, gap, solver, output, as_json)
            return
    problem = load_problem(
        hw, csd, trace, synthetic, seed, batch_size, tt, tt_rank, energy_weight, fine_tables
    )
    with _stdout_to_stderr():
        opts = build_options(problem)
        check_feasibility(opts)
        if solve:
            res = mip_solve(
                opts,
                solver=solver,
                time_limit=time_limit,
                gap=gap,
                strategy=strategy,
                heuristics=names,
                seed=seed,
            )
        else:
            import time as _time

            t0 = _time.perf_counter()
            hres = run_heuristics(opts, names, seed)
            ok = {k: v for k, v in hres.items() if v is not None}
            if not ok:
                raise ConfigError(
                    "no heuristic found a plan that fits the devices' tiers",
                    where="sharding problem",
                    fix="run with --solve (the MIP also uses TT storage), add devices, or allow TT",
                )
            best = min(ok, key=lambda k: ok[k][1].objective)
            a, ev = ok[best]
            rec = SolveRecord(
                solver=f"heuristic:{best}",
                strategy="heuristic",
                status="Heuristic",
                objective=ev.objective,
                bound=-math.inf,
                gap=math.inf,
                solve_time_s=_time.perf_counter() - t0,
                num_variables=0,
                num_constraints=0,
                time_limit_s=None,
                gap_target=None,
                start=best,
                start_objective=ev.objective,
            )
            res = ShardResult(
                opts, a, ev, rec, {k: (None if v is None else v[1]) for k, v in hres.items()}
            )
        src = {"trace": trace, "synthetic": synthetic, "hw": hw, "csd": csd, "seed": seed}
        plan = result_plan(res, {"inputs": src}) if (output or verify) else None
        ver = None
        if plan is not None and trace is not None and (row_order == "inline" or verify):
            plan = _with_hotness(plan, trace)
        if verify and plan is not None and trace is not None and hw is not None:
            ver = verify_plan(hw, trace, plan, res.evaluation.makespan_s, output)
    if plan is not None and output:
        plan.save(output)
    summary = res.summary()
    if ver is not None:
        summary["verify"] = ver
    if as_json:
        summary["plan"] = output
        summary["tt_tables"] = sum(1 for p in res.placements() if p["format"] == "tt")
        echo_json(summary)
        return
    rec = res.record
    click.echo(
        f"problem   {problem.num_tables} tables x {problem.num_devices} devices, "
        f"batch {problem.batch_size}, {opts.total_options():,} placement options"
    )
    click.echo(
        f"solver    {rec.solver} ({rec.strategy})  status: {rec.status}  "
        f"time {rec.solve_time_s:.2f} s  variables {rec.num_variables:,}  "
        f"constraints {rec.num_constraints:,}"
    )
    gap_txt = "-" if not math.isfinite(rec.gap) else f"{rec.gap * 100:.3f} %"
    click.echo(
        f"makespan  {_fmt_s(res.evaluation.makespan_s)}  objective {_fmt_s(rec.objective)}  "
        f"bound {_fmt_s(rec.bound if math.isfinite(rec.bound) else None)}  gap {gap_txt}"
    )
    click.echo(f"{'plan':<20} {'makespan':>12} {'vs chosen':>10}")
    ms = res.evaluation.makespan_s
    click.echo(f"{'chosen':<20} {_fmt_s(ms):>12} {'':>10}")
    for k, v in res.heuristics.items():
        if v is None:
            click.echo(f"{k:<20} {'no fit':>12}")
        else:
            click.echo(f"{k:<20} {_fmt_s(v.makespan_s):>12} {v.makespan_s / ms:>9.2f}x")
    n_tt = sum(1 for p in res.placements() if p["format"] == "tt")
    click.echo(f"TT tables {n_tt} of {problem.num_tables}")
    if output:
        click.echo(f"plan      {output}")
    if ver is not None:
        click.echo(
            f"verify    predicted {_fmt_s(ver['predicted_s'])} per batch, simulated "
            f"{_fmt_s(ver['simulated_s'])} ({ver['system']} embedding stage), error "
            f"{ver['error'] * 100:+.1f} %"
        )


def _check_verifiable(hw: str | None, trace: str | None) -> None:
    if trace is None or hw is None:
        raise ConfigError(
            "--verify needs --trace and --hw (the simulator replays the plan on that trace)",
            where="--verify",
            fix="give a trace and a hardware config, or drop --verify",
        )
    from simrec.hw import load_hw

    cfg = load_hw(hw)
    if not (cfg.devices_of_kind("gpu") or cfg.devices_of_kind("csd")):
        raise ConfigError(
            "--verify needs a system whose simulator reads plans: multi_gpu (GPUs) or SCRec "
            "(csd devices); cpu_dram places tables itself",
            where="--verify",
            fix="use a GPU or CSD config (e.g. --hw multi_gpu, --hw hwconfigs/screc.yaml) or "
            "drop --verify",
        )


def _with_hotness(plan: Any, trace: str) -> Any:
    """The plan with every table's hot rows inline: touched rows by access count, hottest first.

    Uses the ``hot_set`` order (listed rows first, in order, then the others by index), which ranks
    every touched row exactly as a full hotness permutation would, at the size of the touched set.
    """
    import numpy as np

    from simrec.shard.plan import RowOrder
    from simrec.trace.stats import profile_trace

    prof = profile_trace(trace, stack_distance=False, keep_counts=True)
    counts = {tp.name: tp.counts for tp in prof.tables}
    tables = []
    for t in plan.tables:
        c = counts.get(t.name)
        if c is None:
            tables.append(t)
            continue
        c = np.asarray(c)
        touched = np.flatnonzero(c)
        hot = touched[np.argsort(-c[touched], kind="stable")]
        order = RowOrder(kind="hot_set", hot_rows=hot.tolist(), source=f"access counts of {trace}")
        tables.append(t.model_copy(update={"order": order}))
    return plan.model_copy(update={"tables": tables}).check()


def verify_plan(
    hw: str, trace: str, plan: Any, predicted_s: float, output: str | None = None
) -> dict[str, Any]:
    """Simulate ``trace`` with ``plan`` and compare the embedding stage with the prediction.

    The planner predicts the slowest device's embedding time per batch; the simulator's
    ``breakdown_s["embedding"]`` summed over batches, divided by the batch count, is the measured
    counterpart. ``error = (predicted - simulated) / simulated``.
    """
    import tempfile
    from pathlib import Path

    from simrec.sim.cli import simulate

    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "plan.json"
        plan.save(path)
        r = simulate(hw, trace, plan=path)
    sim = r.breakdown_s.get("embedding", math.nan) / max(r.batches, 1)
    return {
        "system": r.kind,
        "predicted_s": predicted_s,
        "simulated_s": sim,
        "error": (predicted_s - sim) / sim if sim > 0 else math.nan,
        "simulated_latency_mean_s": r.latency_s.get("mean"),
        "batches": r.batches,
        "plan": output,
    }
