"""``simrec validate``: check simulated systems against ground truth.

``--functional`` runs the planned data path (address remapping, sharding across devices and tiers,
per-table codec) on a trace's lookups and compares the pooled embeddings and the DLRM outputs with
the reference (:mod:`simrec.functional.verify`). The command is built to grow: another mode
(``--measure``) will be added beside ``--functional``; with no mode flag it is a usage error.

Exit status: 0 when every check passes, 1 when a check fails, 2 for bad input.

``size_command`` (``simrec model-size`` once registered) prints whole-model embedding bytes with a
codec per table (:mod:`simrec.functional.model_size`).
"""

from __future__ import annotations

import click

__all__ = ["parse_codec", "size_command", "validate_command"]


def _measure_options(f):  # type: ignore[no-untyped-def]
    from simrec.calibrate.cli import measure_options

    return measure_options(f)


@click.command("validate")
@click.option(
    "--functional",
    is_flag=True,
    help="Run the planned data path on a trace and compare with the numpy reference.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="The .trc trace whose lookups are replayed.",
)
@click.option(
    "--hw",
    "hw_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Hardware YAML; the plan's devices must be among its devices.",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Plan JSON (default: every table raw fp32 on one device).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the model parameters.")
@click.option(
    "--pooling",
    type=click.Choice(["sum", "mean", "max"]),
    default="sum",
    show_default=True,
    help="Embedding-bag pooling mode.",
)
@click.option("--max-batches", type=click.IntRange(min=1), help="Check only the first N batches.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@_measure_options
def validate_command(
    measure: bool,
    quick: bool,
    probe_json: str | None,
    repeat_probe: str | None,
    heldout: str,
    record: bool,
    json_out: str | None,
    functional: bool,
    trace_path: str | None,
    hw_path: str | None,
    plan_path: str | None,
    seed: int,
    pooling: str,
    max_batches: int | None,
    as_json: bool,
) -> None:
    """Validate a simulated system: --functional checks the embedding math end to end;
    --measure compares the model built from --hw with held-out workloads measured here.

    \b
    Examples:
      simrec validate --functional --trace traces/criteo_sample.trc --plan plan.json
      simrec validate --measure --quick --hw hwconfigs/cpu_dram.yaml
      simrec validate --measure --hw measured.yaml --probe-json cpu.probe.json --heldout v3
    """
    if measure:
        if functional:
            raise click.UsageError("give --functional or --measure, not both")
        if hw_path is None:
            raise click.UsageError("--measure needs --hw HW.yaml (e.g. a calibrated preset)")
        from simrec.calibrate.cli import validate_measure

        validate_measure(
            hw_path,
            quick,
            probe_json,
            record,
            json_out,
            as_json,
            repeat_probe=repeat_probe,
            heldout=heldout,
        )
        return
    if not functional:
        raise click.UsageError(
            "choose what to validate: --functional (replay the planned data path on a trace "
            "and compare with the reference) or --measure (held-out workloads on this machine)"
        )
    if trace_path is None:
        raise click.UsageError("--functional needs --trace T.trc")
    from simrec.functional.verify import (
        hotness_permutations,
        hw_device_names,
        verify_functional,
    )
    from simrec.shard.plan import load_plan
    from simrec.trace.format import TraceReader

    reader = TraceReader(trace_path)
    devices = None
    source = "plan"
    if hw_path is not None:
        devices = hw_device_names(hw_path)
        source = f"hw:{hw_path}"
    plan = None
    if plan_path is not None:
        plan = load_plan(plan_path, hw_device_names=devices, trace_header=reader.header)
    elif devices is not None:
        from simrec.shard.plan import single_device_plan

        plan = single_device_plan(reader.header, device=devices[0])
    perms = hotness_permutations(reader, plan) if plan is not None else {}
    report = verify_functional(
        reader,
        plan,
        seed=seed,
        mode=pooling,  # type: ignore[arg-type]
        perms=perms,
        max_batches=max_batches,
        device_source=source,
    )
    if perms:
        names = [t.name for t in reader.header.tables if t.name in perms]
        report.notes.append(
            f"hotness order from the trace's access counts for {len(names)} table(s): "
            + ", ".join(names)
        )
    if as_json:
        from simrec.cli import echo_json

        echo_json(report.to_dict())
    else:
        _print(report)
    if not report.passed:
        raise click.exceptions.Exit(1)


def _print(report: object) -> None:
    r = report  # VerifyReport
    click.echo(
        f"trace {r.trace}: {r.batches} batches; devices {', '.join(r.devices)} "  # type: ignore[attr-defined]
        f"(from {r.device_source})"  # type: ignore[attr-defined]
    )
    click.echo(
        f"{'table':<14} {'codec':<10} {'check':<10} {'lookups':>9} {'max err':>10} "
        f"{'mean err':>10} {'err/tol':>8}  result"
    )
    for t in r.tables:  # type: ignore[attr-defined]
        kind = "bit-exact" if t.exact else "tolerance"
        ratio = "-" if t.exact else f"{t.worst_ratio:.3f}"
        click.echo(
            f"{t.name:<14} {t.codec:<10} {kind:<10} {t.lookups:>9,} {t.max_abs_err:>10.3g} "
            f"{t.mean_abs_err:>10.3g} {ratio:>8}  {'ok' if t.passed else 'FAIL'}"
        )
        if t.failure:
            click.echo(f"    first failure: {t.failure}")
    d = r.dlrm  # type: ignore[attr-defined]
    if d is not None:
        verdict = {True: "ok", False: "FAIL", None: "reported"}[d["passed"]]
        click.echo(
            f"DLRM {'-'.join(map(str, d['config']['bottom']))} / "
            f"{'-'.join(map(str, d['config']['top']))} ({d['config']['weights']}): "
            f"{d['samples']} samples, max |diff| {d['max_abs_diff']:.3g}, "
            f"mean {d['mean_abs_diff']:.3g}, {d['checked']}: {verdict}"
        )
    for note in r.notes:  # type: ignore[attr-defined]
        click.echo(f"note: {note}")
    click.echo("PASSED" if r.passed else "FAILED")  # type: ignore[attr-defined]


_DATASETS = {
    "kaggle": ("CRITEO_KAGGLE_ROWS", 16),
    "tb-hash10m": ("CRITEO_TB_HASH10M_ROWS", 64),
    "mlperf40m": ("CRITEO_TB_MLPERF40M_ROWS", 128),
}


def parse_codec(text: str) -> object:
    """A codec spec from a short name.

    ``raw``/``fp32``, ``fp16``, ``int8`` (row-wise, fp32 scale+bias), ``int4``/``int2`` (row-wise,
    fp16 scale+bias), any int with ``-table`` (one symmetric scale per table, DQRM), ``tt:R`` or
    ``tt:R1,R2`` (TT ranks, suggested shapes), ``hash:BUCKETS``, ``qr:M``.
    """
    from simrec.functional.spec import HashSpec, QRSpec, QuantSpec, RawSpec, TTSpec

    t = text.strip().lower()
    try:
        if t in ("raw", "fp32", "float32"):
            return RawSpec()
        if t in ("fp16", "float16"):
            return RawSpec(dtype="float16")
        if t.startswith("int"):
            base, _, gran = t.partition("-")
            bits = int(base[3:])
            if gran not in ("", "row", "table") or bits not in (8, 4, 2):
                raise ValueError
            return QuantSpec(
                bits=bits,  # type: ignore[arg-type]
                granularity="table" if gran == "table" else "row",
                scale_dtype="float32" if bits == 8 else "float16",
            )
        kind, _, arg = t.partition(":")
        if kind == "tt":
            ranks = [int(x) for x in arg.split(",")]
            return TTSpec(ranks=ranks if len(ranks) > 1 else ranks * 2)
        if kind == "hash":
            return HashSpec(buckets=int(arg))
        if kind == "qr":
            return QRSpec(num_remainder=int(arg))
    except ValueError:
        pass
    raise click.BadParameter(
        f"{text!r} is not a codec; use raw, fp16, int8, int4, int2 (optionally -table), "
        "tt:R[,R2], hash:N or qr:M",
        param_hint="--codec",
    )


@click.command("model-size")
@click.option(
    "--dataset",
    type=click.Choice(sorted(_DATASETS)),
    help="Published cardinalities (data.md §1): kaggle (dim 16), tb-hash10m (64), mlperf40m (128).",
)
@click.option(
    "--trace", "trace_path", type=click.Path(dir_okay=False), help="Take rows/dims from a trace."
)
@click.option("--rows", help="Comma-separated row counts.")
@click.option("--dim", type=click.IntRange(min=1), help="Embedding dim (default: the dataset's).")
@click.option("--codec", default="raw", show_default=True, help="Codec for every table.")
@click.option(
    "--tt-largest",
    type=click.IntRange(min=0),
    default=0,
    help="TT-compress the K largest tables (the others use --codec).",
)
@click.option("--tt-rank", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def size_command(
    dataset: str | None,
    trace_path: str | None,
    rows: str | None,
    dim: int | None,
    codec: str,
    tt_largest: int,
    tt_rank: int,
    as_json: bool,
) -> None:
    """Embedding bytes of a whole model with a codec per table (GB = 10^9 B, GiB = 2^30 B).

    \b
    Examples:
      simrec model-size --dataset kaggle                         # 2.1608 GB fp32
      simrec model-size --dataset kaggle --codec int4-table      # DQRM INT4: 0.2701 GB
      simrec model-size --dataset kaggle --tt-largest 7          # TT-Rec: 221.9x
    """
    from simrec.functional import model_size as ms
    from simrec.functional.spec import TTSpec

    given = [x is not None for x in (dataset, trace_path, rows)]
    if sum(given) != 1:
        raise click.UsageError("give exactly one of --dataset, --trace or --rows")
    names: list[str] | None = None
    if dataset is not None:
        attr, default_dim = _DATASETS[dataset]
        row_list = list(getattr(ms, attr))
        dims: list[int] = [dim or default_dim] * len(row_list)
    elif trace_path is not None:
        from simrec.trace.format import TraceReader

        hdr = TraceReader(trace_path).header
        row_list = [t.rows for t in hdr.tables]
        dims = [dim or t.dim for t in hdr.tables]
        names = [t.name for t in hdr.tables]
    else:
        try:
            row_list = [int(x) for x in (rows or "").split(",") if x.strip()]
        except ValueError:
            raise click.BadParameter("row counts must be integers", param_hint="--rows") from None
        if not row_list or min(row_list) < 1:
            raise click.BadParameter("give positive row counts", param_hint="--rows")
        if dim is None:
            raise click.UsageError("--rows needs --dim")
        dims = [dim] * len(row_list)
    base = parse_codec(codec)
    specs: list[object] = [base] * len(row_list)
    if tt_largest:
        order = sorted(range(len(row_list)), key=lambda i: (-row_list[i], i))[:tt_largest]
        for i in order:
            specs[i] = TTSpec(ranks=[tt_rank, tt_rank])
    size = ms.model_size(row_list, dims, specs, names)
    out = {
        "tables": [t.__dict__ for t in size.tables],
        "embedding_bytes": size.embedding_bytes,
        "embedding_payload_bytes": size.embedding_payload_bytes,
        "fp32_bytes": size.fp32_embedding_bytes,
        "GB": size.embedding_bytes / 1e9,
        "GiB": size.embedding_bytes / 2**30,
        "compression_vs_fp32": size.compression,
    }
    if as_json:
        from simrec.cli import echo_json

        echo_json(out)
        return
    click.echo(f"{'table':<10} {'rows':>14} {'dim':>5} {'codec':<6} {'bytes':>16}")
    for t in size.tables:
        click.echo(f"{t.name:<10} {t.rows:>14,} {t.dim:>5} {t.codec:<6} {t.bytes:>16,}")
    click.echo(
        f"total {size.embedding_bytes:,} B = {out['GB']:.4f} GB = {out['GiB']:.4f} GiB "
        f"(without scale/bias: {size.embedding_payload_bytes / 1e9:.4f} GB); "
        f"fp32 {size.fp32_embedding_bytes / 1e9:.4f} GB; compression {size.compression:.1f}x"
    )
