"""Turn public data sets into ``.trc`` traces, and ``.trc`` traces back into ``dlrm_datasets`` files.

``simrec trace convert --from KIND INPUT -o OUT.trc`` with KIND one of:

* ``criteo``: raw Criteo Kaggle/Terabyte text (:func:`simrec.trace.conv_text.convert_criteo`);
* ``avazu``: Avazu CTR CSV (:func:`simrec.trace.conv_text.convert_avazu`);
* ``movielens``: MovieLens in DeepCTR's joined layout (:func:`simrec.trace.conv_text.convert_movielens`);
* ``dlrm-trace``: dlrm's ``trace.log`` (:func:`simrec.trace.conv_dlrm.convert_dlrm_trace`);
* ``dlrm-datasets``: Meta's ``.pt``/``.pt.gz`` (:func:`simrec.trace.conv_dlrm.convert_dlrm_datasets`).

``simrec trace export --to dlrm-datasets IN.trc -o OUT.pt[.gz]`` is :func:`export_dlrm_datasets`.
Mappings, options and the missing-value policy are documented in ``docs/trace-converters.md``.
Every converter is deterministic (no random choice is made) and records its source file name,
SHA-256 and options in the trace's provenance; a bad input raises :class:`ConvertError` naming the
file, the line or field and the fix, and leaves no output file behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from simrec.errors import ConvertError
from simrec.trace.conv_common import ConvertResult
from simrec.trace.conv_dlrm import convert_dlrm_datasets, convert_dlrm_trace, export_dlrm_datasets
from simrec.trace.conv_text import convert_avazu, convert_criteo, convert_movielens

__all__ = [
    "CONVERTERS",
    "ConvertResult",
    "convert",
    "convert_command",
    "export",
    "export_command",
]

CONVERTERS: dict[str, Callable[..., ConvertResult]] = {
    "criteo": convert_criteo,
    "avazu": convert_avazu,
    "movielens": convert_movielens,
    "dlrm-trace": convert_dlrm_trace,
    "dlrm-datasets": convert_dlrm_datasets,
}
EXPORTERS: dict[str, Callable[..., ConvertResult]] = {"dlrm-datasets": export_dlrm_datasets}

# which options each kind takes (beyond batch_size and dim, which all take)
_OPTIONS: dict[str, tuple[str, ...]] = {
    "delimiter": ("criteo",),
    "max_ind_range": ("criteo",),
    "missing": ("criteo", "avazu", "movielens"),
    "binary_label": ("movielens",),
    "binary": ("dlrm-trace",),
    "rows": ("dlrm-datasets",),
    "tables": ("dlrm-datasets",),
    "vocab_out": ("criteo", "avazu", "movielens"),
}


def _unknown(
    kind: str, valid: dict[str, Any], option: str, path: str | os.PathLike[str] | None = None
) -> ConvertError:
    return ConvertError(
        f"unknown kind {kind!r}",
        path=path,
        where=f"option {option}",
        fix="use one of: " + ", ".join(valid),
    )


def convert(
    kind: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    **options: Any,
) -> ConvertResult:
    """Convert ``input`` of source ``kind`` into the ``.trc`` file ``output``.

    ``options`` are the converter's keyword arguments (``batch_size``, ``dim``, ``delimiter``,
    ``missing``, ``max_ind_range``, ``binary_label``, ``binary``, ``rows``, ``tables``,
    ``vocab_out``); ``None``
    values are ignored. An option the kind does not take is an error.
    """
    if kind not in CONVERTERS:
        raise _unknown(kind, CONVERTERS, "--from", input)
    kw = {k: v for k, v in options.items() if v is not None and v is not False}
    for k in kw:
        allowed = _OPTIONS.get(k)
        if allowed is not None and kind not in allowed:
            flag = "--" + k.replace("_", "-")
            raise ConvertError(
                f"{flag} does not apply to --from {kind}",
                where=f"option {flag}",
                fix=f"{flag} is for --from {' / '.join(allowed)}; leave it out",
            )
        if allowed is None and k not in ("batch_size", "dim"):
            raise ConvertError(f"unknown option {k!r}", fix="see `simrec trace convert --help`")
    return CONVERTERS[kind](input, output, **kw)


def export(
    kind: str, input: str | os.PathLike[str], output: str | os.PathLike[str]
) -> ConvertResult:
    """Write the ``.trc`` ``input`` in the external format ``kind`` (``dlrm-datasets``)."""
    if kind not in EXPORTERS:
        raise _unknown(kind, EXPORTERS, "--to", input)
    return EXPORTERS[kind](input, output)


def _n(k: int, word: str) -> str:
    plural = word + ("es" if word.endswith("ch") else "s")
    return f"{k:,} {word if k == 1 else plural}"


def _report(res: ConvertResult, as_json: bool) -> None:
    if as_json:
        from simrec.cli import echo_json

        echo_json(res.summary())
        return
    rows = sum(t.rows for t in res.tables)
    click.echo(
        f"wrote {res.path}: {_n(res.num_samples, 'sample')} in {_n(res.num_batches, 'batch')}, "
        f"{_n(len(res.tables), 'table')} ({_n(rows, 'row')}), {_n(res.num_lookups, 'lookup')}"
    )
    for n in res.notes:
        click.echo(f"note: {n}", err=True)


@click.command()
@click.option(
    "--from",
    "kind",
    required=True,
    metavar="KIND",
    help="Source format: " + ", ".join(CONVERTERS) + ".",
)
@click.argument("input", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The .trc file to write.",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Samples per batch [128; dlrm-datasets: the file's batch].",
)
@click.option("--dim", type=int, default=16, show_default=True, help="Embedding dim per table.")
@click.option(
    "--delimiter",
    default=None,
    help="criteo: field separator (tab, comma or a character) [detected].",
)
@click.option(
    "--missing",
    type=click.Choice(["row", "empty-bag"]),
    default=None,
    help="criteo/avazu/movielens: missing categorical -> its own row (default) or a 0-length bag.",
)
@click.option(
    "--max-ind-range",
    type=int,
    default=None,
    help="criteo: row = int(hex) mod N as dlrm does (rows = N) instead of dense ids.",
)
@click.option("--binary-label", is_flag=True, help="movielens: label = rating >= 4.")
@click.option("--binary", is_flag=True, help="dlrm-trace: raw uint64 instead of text.")
@click.option(
    "--rows",
    default=None,
    help="dlrm-datasets: rows for all tables, or one per table (comma-separated).",
)
@click.option(
    "--tables", default=None, help="dlrm-datasets: subset of tables, e.g. 0,5,9 (as FBGEMM)."
)
@click.option(
    "--vocab-out",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="criteo/avazu/movielens: also write the raw value of every row to this JSON file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def convert_command(
    kind: str,
    input: str,
    output: str,
    batch_size: int | None,
    dim: int,
    delimiter: str | None,
    missing: str | None,
    max_ind_range: int | None,
    binary_label: bool,
    binary: bool,
    rows: str | None,
    tables: str | None,
    vocab_out: str | None,
    as_json: bool,
) -> None:
    """Convert INPUT (a public data set of kind --from) to the .trc trace -o OUT.

    \b
    Examples:
      simrec trace convert --from criteo traces/criteo_sample.txt -o criteo.trc
      simrec trace convert --from criteo day_0 --max-ind-range 10000000 -o day0.trc
      simrec trace convert --from movielens ml.csv --binary-label -o ml.trc
      simrec trace convert --from dlrm-trace trace.log -o t.trc
      simrec trace convert --from dlrm-datasets fbgemm_t856_bs65536_0.pt.gz --tables 0,5,9 -o m.trc
    """
    res = convert(
        kind,
        input,
        output,
        batch_size=batch_size,
        dim=dim,
        delimiter=delimiter,
        missing=missing,
        max_ind_range=max_ind_range,
        binary_label=binary_label,
        binary=binary,
        rows=rows,
        tables=tables,
        vocab_out=vocab_out,
    )
    _report(res, as_json)


@click.command()
@click.option(
    "--to",
    "kind",
    required=True,
    metavar="KIND",
    help="Target format: " + ", ".join(EXPORTERS) + ".",
)
@click.argument("input", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The file to write (.pt, or .pt.gz for gzip).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_command(kind: str, input: str, output: str, as_json: bool) -> None:
    """Write the .trc trace INPUT in another format (dlrm-datasets: a torch (indices, offsets,
    lengths) tuple, all batches joined into one)."""
    _report(export(kind, input, output), as_json)
