"""End-to-end functional verification: run the simulated system's data path, compare with a reference.

For a trace and a plan, :class:`FunctionalSystem` builds what the simulated hardware would hold:
per table and per (device, tier) a *store* — the band's codec (raw rows, quantised rows, TT cores,
hash tables, …) over the band's local rows, filled from the plan's band definitions (rank ranges
and row order). Per batch it then runs the system's data path:

    trace indices -> address remapper (plan) -> (device, tier, local row)
                  -> per store: codec lookup (dequantise / TT GEMM chain / hash …) -> pooling

and the reference path: the model's parameters by original row id (the fp32 table for raw and
quantised tables; the codec's plain float64 definition for the others), pooled the plain way.

Verdicts per table: **raw fp32 paths must be bit-exact** (same row values, same pooling order);
lossy paths must lie within the tolerance the codec states per row (quantisation half-step, fp16
half-ulp, float32 GEMM rounding for TT …), accumulated over the bag, plus float32 summation
slack. The report gives max / mean abs error and the worst error/tolerance ratio per table. When
the trace has dense features and labels (a converted Criteo trace) a seeded-random DLRM
(:mod:`simrec.functional.dlrm`) runs on both pooled results; its outputs must be bit-exact when
every table is exact, and their difference is reported otherwise.

The stores are built from the plan independently of :class:`~simrec.shard.remap.Remapper` (a
scatter over band ranges vs. a search over band starts), so a remapper that sends a row to the
wrong local address shows up as a mismatch.

What it leaves out: timing (that is the simulator's job), caches that change what is stored at run
time (CAFE's sketch is updated once per batch before the lookups), and tables too large for RAM
(the reference materialises each raw/quantised table in fp32).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from simrec.errors import ConfigError, SimrecError
from simrec.functional.codecs import CAFECodec, Codec, build_codec, dlrm_uniform_table
from simrec.functional.dlrm import DLRM, DLRMConfig
from simrec.functional.embedding_bag import Mode, pool_rows
from simrec.shard.plan import Plan, single_device_plan
from simrec.shard.remap import Remapper, order_permutation

__all__ = [
    "FunctionalSystem",
    "TableCheck",
    "VerifyReport",
    "hotness_permutations",
    "verify_functional",
]

_EPS32 = 2.0**-24


@dataclass
class TableCheck:
    """Result for one table over all checked batches."""

    name: str
    codec: str
    exact: bool
    lookups: int = 0
    bags: int = 0
    max_abs_err: float = 0.0
    mean_abs_err: float = 0.0
    max_tolerance: float = 0.0
    worst_ratio: float = 0.0
    passed: bool = True
    failure: str | None = None
    _err_sum: float = field(default=0.0, repr=False)
    _err_n: int = field(default=0, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_err_sum")
        d.pop("_err_n")
        return d


@dataclass
class VerifyReport:
    """Per-table checks, the DLRM output comparison, and where the device list came from."""

    trace: str
    batches: int
    devices: list[str]
    device_source: str
    tables: list[TableCheck]
    dlrm: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        ok = all(t.passed for t in self.tables)
        if self.dlrm is not None and self.dlrm.get("checked") == "bit-exact":
            ok = ok and bool(self.dlrm["passed"])
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "batches": self.batches,
            "devices": self.devices,
            "device_source": self.device_source,
            "passed": self.passed,
            "tables": [t.as_dict() for t in self.tables],
            "dlrm": self.dlrm,
            "notes": self.notes,
        }

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([t.as_dict() for t in self.tables])


def _pool64(rows: np.ndarray, offsets: np.ndarray, mode: str, w: np.ndarray | None) -> np.ndarray:
    """Plain float64 pooling (segment reduce) for the reference path."""
    b = offsets.size - 1
    out = np.zeros((b, rows.shape[1]))
    if rows.shape[0] == 0:
        return out
    r = rows if w is None else rows * w[:, None]
    lengths = np.diff(offsets)
    ne = np.flatnonzero(lengths > 0)
    red = np.maximum if mode == "max" else np.add
    out[ne] = red.reduceat(r, offsets[:-1][ne], axis=0)
    if mode == "mean":
        out /= np.maximum(lengths, 1)[:, None]
    return out


@dataclass
class _TableStore:
    name: str
    rows: int
    dim: int
    codecs: dict[tuple[int, int], Codec]  # (device code, tier code) -> store
    group_keys: list[tuple[int, int]]
    owner_group: np.ndarray  # row -> index into group_keys (plan semantics, built by scatter)
    owner_local: np.ndarray  # row -> local row in that group
    source: np.ndarray | None  # fp32 reference table for raw/quantised groups
    exact: bool
    kinds: str


class FunctionalSystem:
    """The stores of a planned system plus its data path (see the module docstring)."""

    def __init__(
        self,
        header: Any,
        plan: Plan | None = None,
        seed: int = 0,
        perms: Mapping[str, np.ndarray] | None = None,
        remapper: Remapper | None = None,
    ):
        self.header = header
        self.plan = plan if plan is not None else single_device_plan(header)
        self.plan.check(trace_header=header)
        perms = dict(perms or {})
        self.remapper = remapper if remapper is not None else Remapper(self.plan, perms)
        dcode = {n: i for i, n in enumerate(self.remapper.devices)}
        tcode = {n: i for i, n in enumerate(self.remapper.tiers)}
        self.tables: list[_TableStore] = []
        for t_idx, spec in enumerate(header.tables):
            tp = self.plan.table(spec.name)
            perm = order_permutation(tp, perms.get(spec.name))
            groups: dict[tuple[int, int], list[Any]] = {}
            for b in tp.sorted_bands():
                groups.setdefault((dcode[b.device], tcode[b.tier]), []).append(b)
            owner_group = np.full(tp.rows, -1, dtype=np.int64)
            owner_local = np.full(tp.rows, -1, dtype=np.int64)
            source = None
            codecs: dict[tuple[int, int], Codec] = {}
            keys = list(groups)
            for gi, key in enumerate(keys):
                bands = groups[key]
                ranks = np.concatenate([np.arange(b.start, b.stop, dtype=np.int64) for b in bands])
                orig = ranks if perm is None else perm[ranks]
                owner_group[orig] = gi
                owner_local[orig] = np.arange(orig.size, dtype=np.int64)
                cspec = tp.band_codec(bands[0])
                if cspec.kind in ("raw", "quant"):
                    if source is None:
                        source = dlrm_uniform_table(tp.rows, tp.dim, seed * 7919 + t_idx)
                    codecs[key] = build_codec(cspec, orig.size, tp.dim, table=source[orig])
                else:
                    codecs[key] = build_codec(
                        cspec, orig.size, tp.dim, seed=seed * 7919 + t_idx * 97 + gi
                    )
            self.tables.append(
                _TableStore(
                    name=spec.name,
                    rows=tp.rows,
                    dim=tp.dim,
                    codecs=codecs,
                    group_keys=keys,
                    owner_group=owner_group,
                    owner_local=owner_local,
                    source=source,
                    exact=all(c.exact for c in codecs.values()),
                    kinds="+".join(sorted({c.spec.kind for c in codecs.values()})),
                )
            )

    # -- the system's data path ---------------------------------------------------------------
    def system_rows(self, t: int, idx: np.ndarray) -> np.ndarray:
        """Rows of table ``t`` fetched through the remapper and the per-(device, tier) stores."""
        st = self.tables[t]
        dev, tier, local = self.remapper.remap(st.name, idx)
        rows = np.empty((idx.size, st.dim), dtype=np.float32)
        key = dev.astype(np.int64) * 65536 + tier.astype(np.int64)
        for k in np.unique(key):
            sel = key == k
            store_key = (int(k // 65536), int(k % 65536))
            codec = st.codecs.get(store_key)
            if codec is None:
                raise SimrecError(
                    f"lookups were sent to (device {store_key[0]}, tier {store_key[1]}), "
                    "which holds no rows of this table",
                    where=f"table {st.name!r}",
                )
            if isinstance(codec, CAFECodec):
                codec.observe(local[sel])
            rows[sel] = codec.lookup(local[sel])
        return rows

    def system_pooled(self, t: int, batch: Any, mode: Mode = "sum") -> np.ndarray:
        sl = batch.table_slice(t)
        idx = np.asarray(batch.indices[sl], dtype=np.int64)
        w = None if batch.weights is None else np.asarray(batch.weights[sl])
        return pool_rows(self.system_rows(t, idx), batch.table_offsets(t), mode, w)

    # -- the reference ------------------------------------------------------------------------
    def reference_rows(self, t: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float64 rows, per-row error bound) of table ``t`` by original row id."""
        st = self.tables[t]
        g = st.owner_group[idx]
        loc = st.owner_local[idx]
        rows = np.empty((idx.size, st.dim))
        bound = np.empty(idx.size)
        for gi in np.unique(g):
            sel = g == gi
            codec = st.codecs[st.group_keys[int(gi)]]
            rows[sel] = codec.reference(loc[sel])
            bound[sel] = codec.error_bound(loc[sel])
        return rows, bound

    def check_batch(
        self, batch: Any, mode: Mode, checks: list[TableCheck]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Compare system and reference pooled embeddings of one batch; update ``checks``."""
        sys_out, ref_out = [], []
        for t, st in enumerate(self.tables):
            chk = checks[t]
            sl = batch.table_slice(t)
            idx = np.asarray(batch.indices[sl], dtype=np.int64)
            off = np.asarray(batch.table_offsets(t), dtype=np.int64)
            w = None if batch.weights is None else np.asarray(batch.weights[sl], dtype=np.float64)
            chk.lookups += int(idx.size)
            chk.bags += int(off.size - 1)
            try:
                sys_p = pool_rows(self.system_rows(t, idx), off, mode, w)
            except SimrecError as e:
                chk.passed = False
                chk.failure = chk.failure or f"batch {batch.number}: {e}"
                sys_p = np.full((off.size - 1, st.dim), np.nan, dtype=np.float32)
            if st.exact:
                assert st.source is not None
                ref_p = pool_rows(st.source[idx], off, mode, w)
                err = np.abs(sys_p.astype(np.float64) - ref_p)
                tol = np.zeros_like(err)
                bad = ~(sys_p == ref_p)
            else:
                rows, bound = self.reference_rows(t, idx)
                ref_p = _pool64(rows, off, mode, w)
                wabs = None if w is None else np.abs(w)
                if mode == "max":
                    tol_rows = _pool64(bound[:, None], off, "max", None)
                else:
                    tol_rows = _pool64(bound[:, None], off, mode, wabs)
                lengths = np.maximum(np.diff(off), 1)[:, None]
                slack = lengths * _EPS32 * 2 * _pool64(np.abs(rows), off, "sum", wabs)
                tol = tol_rows + slack
                err = np.abs(sys_p.astype(np.float64) - ref_p)
                bad = ~(err <= tol)
            if err.size:
                finite = err[np.isfinite(err)]
                chk.max_abs_err = max(chk.max_abs_err, float(finite.max()) if finite.size else 0.0)
                chk._err_sum += float(finite.sum())
                chk._err_n += int(err.size)
                chk.mean_abs_err = chk._err_sum / max(chk._err_n, 1)
                chk.max_tolerance = max(chk.max_tolerance, float(tol.max()))
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(tol > 0, err / tol, np.where(err > 0, np.inf, 0.0))
                ratio = np.where(np.isnan(ratio), np.inf, ratio)
                chk.worst_ratio = max(chk.worst_ratio, float(ratio.max()))
                if finite.size < err.size:
                    chk.max_abs_err = float("inf")
            if bad.any():
                chk.passed = False
                s, j = np.argwhere(bad)[0]
                if chk.failure is None:
                    chk.failure = (
                        f"batch {batch.number}, sample {int(s)}, element {int(j)}: system "
                        f"{float(sys_p[s, j])!r} vs reference {float(ref_p[s, j])!r}"
                        + ("" if st.exact else f" (tolerance {float(tol[s, j]):.3g})")
                    )
            sys_out.append(sys_p)
            ref_out.append(np.asarray(ref_p, dtype=np.float32))
        return sys_out, ref_out


def verify_functional(
    trace: Any,
    plan: Plan | None = None,
    seed: int = 0,
    mode: Mode = "sum",
    perms: Mapping[str, np.ndarray] | None = None,
    remapper: Remapper | None = None,
    max_batches: int | None = None,
    device_source: str = "plan",
    run_dlrm: bool = True,
) -> VerifyReport:
    """Verify the planned data path on ``trace`` (a path or a TraceReader); see the module doc."""
    from simrec.trace.format import TraceReader

    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    header = reader.header
    system = FunctionalSystem(header, plan, seed=seed, perms=perms, remapper=remapper)
    checks = [TableCheck(name=s.name, codec=s.kinds, exact=s.exact) for s in system.tables]
    dims = {s.dim for s in header.tables}
    model = None
    if run_dlrm and header.num_dense > 0 and len(dims) == 1:
        d = dims.pop()
        cfg = DLRMConfig(
            bottom=(header.num_dense, 512, 256, 64, d), top=(512, 256, 1),
            num_tables=header.num_tables,
        )  # fmt: skip
        model = DLRM(cfg, seed=seed)
    all_exact = all(c.exact for c in checks)
    dl = {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "samples": 0, "bit_exact": True}
    n = len(reader) if max_batches is None else min(max_batches, len(reader))
    diff_sum = 0.0
    for i in range(n):
        batch = reader.batch(i)
        sys_p, ref_p = system.check_batch(batch, mode, checks)
        if model is not None and batch.dense is not None:
            a = model.forward(batch.dense, sys_p)
            b = model.forward(batch.dense, ref_p)
            diff = np.abs(a.astype(np.float64) - b)
            dl["bit_exact"] = bool(dl["bit_exact"] and np.array_equal(a, b))
            fin = diff[np.isfinite(diff)]
            worst = float(fin.max()) if fin.size == diff.size else float("inf")
            dl["max_abs_diff"] = max(float(dl["max_abs_diff"]), worst)
            diff_sum += float(fin.sum())
            dl["samples"] = int(dl["samples"]) + a.size
    dlrm = None
    if model is not None:
        dl["mean_abs_diff"] = diff_sum / max(int(dl["samples"]), 1)
        dl["config"] = {
            "bottom": list(model.config.bottom),
            "top": list(model.config.top_layers),
            "params": model.config.num_params,
            "weights": f"seeded random (seed {seed}); no trained model",
        }
        dl["checked"] = "bit-exact" if all_exact else "reported"
        dl["passed"] = bool(dl["bit_exact"]) if all_exact else None
        dlrm = dl
    return VerifyReport(
        trace=str(getattr(reader, "path", "")),
        batches=n,
        devices=system.remapper.devices,
        device_source=device_source,
        tables=checks,
        dlrm=dlrm,
    )


def hotness_permutations(reader: Any, plan: Plan) -> dict[str, np.ndarray]:
    """Hotness permutations (row ids by access count, hottest first, ties by row id) from the
    trace, for every plan table ranked by ``hotness`` whose permutation the plan leaves to run time.
    """
    need = [
        (i, s.name, s.rows)
        for i, s in enumerate(reader.header.tables)
        if s.name in plan.table_names
        and plan.table(s.name).order.kind == "hotness"
        and plan.table(s.name).order.permutation is None
    ]
    if not need:
        return {}
    counts = {name: np.zeros(rows, dtype=np.int64) for _, name, rows in need}
    for batch in reader:
        for i, name, rows in need:
            counts[name] += np.bincount(
                np.asarray(batch.table_indices(i), dtype=np.int64), minlength=rows
            )
    return {name: np.argsort(-c, kind="stable") for name, c in counts.items()}


def hw_device_names(path: str | os.PathLike[str]) -> list[str]:
    """Device names of a hardware YAML (via simrec.hw.load_hw when that module is available)."""
    try:
        from simrec.hw import load_hw
    except ImportError as e:  # pragma: no cover - depends on the hw module being present
        raise ConfigError(
            "the hardware config loader (simrec.hw) is not available in this build",
            path=path,
            fix="leave out --hw; the device list is then taken from the plan",
        ) from e
    return list(load_hw(path).devices)
