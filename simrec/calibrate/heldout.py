"""The fixed embedding workloads of calibration and validation, and their seeded indices.

Calibration fits the model parameters on *calibration points*; ``simrec validate --measure``
reports the model's error on a separate *held-out* set whose shapes differ from every calibration
point (other dims, pooling factors, batch sizes, table sizes and skews). The sets are fixed here so
that every machine is validated on the same workloads; the quick variants are small versions for CI.

This module imports only the standard library and numpy: the GPU probe
(:mod:`simrec.calibrate.gpu_probe`) runs it on a machine without simrec's other dependencies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "Workload",
    "make_batch",
    "make_batches",
    "zipf_perm",
    "cycled_batches",
    "CPU_HELDOUT_VERSION",
    "cpu_heldout",
    "cpu_heldout_for",
    "HELDOUT_SETS",
    "HELDOUT_KEYS",
    "heldout_key",
    "cpu_heldout_v3",
    "cpu_heldout_set_for",
    "machine_llc_bytes",
    "gpu_heldout",
    "gpu_calibration",
    "zipf_cdf",
]

MiB = 2**20


@dataclass(frozen=True)
class Workload:
    """One embedding-bag workload: a single fp32 table of ``rows`` x ``dim``, batches of
    ``batch`` bags of exactly ``pooling`` lookups, indices ``uniform`` or ``zipf`` (exponent
    ``alpha``, hot rows scattered by a seeded permutation); ``nbatches`` distinct batches are
    generated from ``seed`` and cycled during the measurement."""

    name: str
    rows: int
    dim: int
    pooling: int
    batch: int
    dist: str = "uniform"
    alpha: float = 1.05
    seed: int = 0
    nbatches: int = 3

    @property
    def row_bytes(self) -> int:
        return 4 * self.dim

    @property
    def table_bytes(self) -> int:
        return self.rows * self.row_bytes

    @property
    def lookups(self) -> int:
        """Lookups per batch."""
        return self.batch * self.pooling

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Workload:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def zipf_cdf(rows: int, alpha: float) -> np.ndarray:
    """CDF over ranks 1..rows of a bounded Zipf law ``p(k) ~ k**-alpha`` (float64, ends at 1)."""
    w = np.arange(1, rows + 1, dtype=np.float64) ** (-alpha)
    c = np.cumsum(w)
    c /= c[-1]
    return c


def zipf_perm(w: Workload) -> np.ndarray:
    """The permutation that scatters the Zipf ranks of ``w`` over its rows (seeded by ``w.seed``
    alone, so every batch has the same hot rows)."""
    return np.random.default_rng([w.seed, 1 << 20]).permutation(w.rows)


def make_batch(
    w: Workload,
    i: int,
    cdf: np.ndarray | None = None,
    perm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``i`` of workload ``w``: ``(indices int64 [batch*pooling], offsets int64 [batch+1])``.

    Deterministic in ``(w.seed, i)``; Zipf ranks map to rows through a permutation seeded by
    ``w.seed`` alone (the same hot rows in every batch). ``cdf`` and ``perm`` may pass a
    precomputed :func:`zipf_cdf` and :func:`zipf_perm` (the slow parts for large tables: pass
    them when generating many batches).
    """
    rng = np.random.default_rng([w.seed, i])
    n = w.lookups
    if w.dist == "uniform":
        idx = rng.integers(0, w.rows, size=n, dtype=np.int64)
    elif w.dist == "zipf":
        c = zipf_cdf(w.rows, w.alpha) if cdf is None else cdf
        ranks = np.searchsorted(c, rng.random(n), side="right")
        np.minimum(ranks, w.rows - 1, out=ranks)
        pm = zipf_perm(w) if perm is None else perm
        idx = pm[ranks].astype(np.int64)
    else:
        raise ValueError(f"unknown index distribution {w.dist!r}")
    offsets = np.arange(0, n + 1, w.pooling, dtype=np.int64)
    return idx, offsets


def make_batches(w: Workload) -> list[tuple[np.ndarray, np.ndarray]]:
    """All ``w.nbatches`` batches of ``w`` (:func:`make_batch`, the Zipf tables computed once)."""
    cdf = zipf_cdf(w.rows, w.alpha) if w.dist == "zipf" else None
    perm = zipf_perm(w) if w.dist == "zipf" else None
    return [make_batch(w, i, cdf, perm) for i in range(w.nbatches)]


def _w(name: str, rows: int, dim: int, pooling: int, batch: int, dist: str = "uniform") -> Workload:
    return Workload(name=name, rows=rows, dim=dim, pooling=pooling, batch=batch, dist=dist)


#: version of the CPU held-out set: 1 (until 2026-12-03) had fixed table sizes meant for a 32 MiB
#: LLC; 2 sizes the cache- and DRAM-regime tables and the cycled batches from the machine's LLC
CPU_HELDOUT_VERSION = 2
#: the cycled batches of a DRAM-regime workload touch at least this many LLCs of rows
DRAM_FOOTPRINT_LLCS = 2.0
#: at most this many distinct batches are cycled (index memory and simulation time)
MAX_CYCLED_BATCHES = 400


def cycled_batches(lookups: int, row_bytes: int, llc_bytes: float, minimum: int = 3) -> int:
    """Distinct batches to cycle so that their lookups touch >= ``DRAM_FOOTPRINT_LLCS`` x the LLC
    of rows (an upper bound of the footprint: repeats are not subtracted), between ``minimum`` and
    :data:`MAX_CYCLED_BATCHES`. A measurement cycles its batches; with fewer of them a table many
    times the LLC would be served from the LLC once warm, and the point would not be DRAM-bound."""
    need = int(np.ceil(DRAM_FOOTPRINT_LLCS * float(llc_bytes) / max(1, lookups * row_bytes)))
    return int(min(MAX_CYCLED_BATCHES, max(minimum, need)))


def _sized(
    tag: str,
    dim: int,
    pooling: int,
    batch: int,
    llcs: float,
    llc: float,
    dist: str = "uniform",
    dram: bool = False,
    max_table_bytes: float | None = None,
) -> Workload:
    """A workload on a table of ``llcs`` x the LLC (capped at ``max_table_bytes``); DRAM-regime
    ones (``dram``) cycle enough batches to overflow the LLC (:func:`cycled_batches`)."""
    tb = llcs * llc
    if max_table_bytes is not None:
        tb = min(tb, max_table_bytes)
    rows = max(1024, int(tb // (4 * dim)))
    mult = rows * 4 * dim / llc
    size = f"{mult:.2g}xLLC" if mult < 1 else f"{mult:.0f}xLLC"
    nb = cycled_batches(batch * pooling, 4 * dim, llc) if dram else 3
    name = f"{tag}_{size}_{'zipf' if dist == 'zipf' else 'uni'}"
    return Workload(
        name=name, rows=rows, dim=dim, pooling=pooling, batch=batch, dist=dist, nbatches=nb
    )


def cpu_heldout(
    quick: bool = False,
    llc_bytes: float | None = None,
    max_table_bytes: float | None = None,
) -> list[Workload]:
    """Held-out CPU workloads (version :data:`CPU_HELDOUT_VERSION`): dims 16-256, pooling 1-64,
    batch 512-65,536, uniform and Zipf(1.05), in three regimes sized from the machine's LLC
    (``llc_bytes``, the largest cache sysfs reports; 32 MiB when unknown):

    * **private-cache-resident**: 256-512 KiB tables (fixed sizes), 3 cycled batches;
    * **LLC-resident**: tables of 1/4 and 1/2 of the LLC, 3 cycled batches;
    * **DRAM-bound**: tables of 7-16 LLCs (at least 10 x a 32 MiB LLC, capped at
      ``max_table_bytes``), cycling enough distinct batches that their rows take at least
      :data:`DRAM_FOOTPRINT_LLCS` LLCs (:func:`cycled_batches`), so that the warm state a
      measurement sees is DRAM-bound for uniform indices (Zipf ones keep their hot rows cached).

    Names carry the table size in LLCs. Version 1 used fixed sizes meant for a 32 MiB LLC
    (7 MiB-512 MiB, 3 batches): on a 300 MiB-L3 machine every workload was LLC-served once warm.
    No (dim, pooling, batch) is a calibration point's
    (:func:`~simrec.calibrate.bench_cpu.cpu_calibration_workloads`; a test checks).
    """
    llc = float(llc_bytes or 32 * MiB)
    if quick:
        return [
            _w("q_d32_l8_b2048_256KiB_uni", 2048, 32, 8, 2048),
            _w("q_d96_l4_b4096_6MiB_zipf", 16_384, 96, 4, 4096, "zipf"),
            _w("q_d24_l16_b1024_48MiB_uni", 524_288, 24, 16, 1024),
            _w("q_d256_l2_b2048_64MiB_uni", 65_536, 256, 2, 2048),
        ]
    cap = max_table_bytes

    def dram(tag: str, d: int, lp: int, b: int, k: float, dist: str = "uniform") -> Workload:
        return _sized(tag, d, lp, b, k, llc, dist, dram=True, max_table_bytes=cap)

    return [
        _w("d16_l1_b65536_256KiB_uni", 4096, 16, 1, 65_536),
        _w("d32_l8_b4096_512KiB_uni", 4096, 32, 8, 4096),
        _w("d256_l16_b1024_512KiB_uni", 512, 256, 16, 1024),
        _sized("d48_l24_b2048", 48, 24, 2048, 0.25, llc),
        _sized("d96_l4_b16384", 96, 4, 16_384, 0.5, llc, "zipf"),
        dram("d32_l64_b512", 32, 64, 512, 16),
        dram("d24_l20_b8192", 24, 20, 8192, 12),
        dram("d64_l2_b65536", 64, 2, 65_536, 16),
        dram("d128_l10_b2048", 128, 10, 2048, 16),
        dram("d256_l4_b4096", 256, 4, 4096, 16),
        dram("d64_l40_b2048", 64, 40, 2048, 16, "zipf"),
        dram("d16_l48_b1024", 16, 48, 1024, 16, "zipf"),
        dram("d192_l12_b4096", 192, 12, 4096, 7, "zipf"),
        dram("d40_l1_b32768", 40, 1, 32_768, 14),
    ]


def machine_llc_bytes(info: dict[str, Any]) -> float | None:
    """The largest cache of a machine record (``caches``, as
    :func:`~simrec.calibrate.bench_cpu.machine_info` reports them), which the LLC-relative sizes
    follow; None when the record has none."""
    return float(max((info.get("caches") or {}).values() or [0])) or None


def cpu_heldout_for(info: dict[str, Any], quick: bool = False) -> list[Workload]:
    """The held-out set (:func:`cpu_heldout`) of the machine a record describes: sized from its
    largest cache, tables capped at a quarter of its memory."""
    return cpu_heldout_set_for(info, "v2", quick)


#: the CPU held-out sets a probe measures and ``simrec validate --measure --heldout`` picks, by
#: the probe's key for their runs: v2 (:func:`cpu_heldout`) and v3 (:func:`cpu_heldout_v3`)
HELDOUT_KEYS = {"v2": "heldout", "v3": "heldout_v3"}
HELDOUT_SETS = tuple(HELDOUT_KEYS)


def heldout_key(which: str) -> str:
    """The probe's key for the runs of held-out set ``which`` (:data:`HELDOUT_KEYS`); an
    unknown set is refused."""
    if which not in HELDOUT_KEYS:
        from simrec.errors import SimrecError

        raise SimrecError(
            f"unknown held-out set {which!r}",
            where="--heldout",
            fix=f"give one of {', '.join(HELDOUT_SETS)}",
        )
    return HELDOUT_KEYS[which]


def cpu_heldout_v3(
    quick: bool = False,
    llc_bytes: float | None = None,
    max_table_bytes: float | None = None,
) -> list[Workload]:
    """Held-out CPU set v3 (fixed on 2026-12-04, before any machine measured it): 14 workloads
    of shapes that neither the calibration points nor set v2 have, so that a probe's result on
    them is blind to six leases of model development against v2 (a test checks the shapes are
    new). Dims 20-240 (rows of 80 B to 960 B, most not a power of two), pooling 1-64, batch
    512-65,536, uniform and Zipf(1.05); two private-cache-resident tables (fixed sizes), three
    LLC-resident ones (1/8 to 3/4 of the LLC) and nine DRAM-bound ones (9-16 LLCs, cycled as in
    v2: :func:`cycled_batches`), sized from the machine's LLC like v2 (:func:`_sized`). Names
    start with ``h3_``. The probe measures them last, after v2 and the drift sentinels, with
    the chosen implementation only."""
    llc = float(llc_bytes or 32 * MiB)
    if quick:
        return [
            _w("h3q_d80_l6_b2048_375KiB_uni", 1200, 80, 6, 2048),
            _w("h3q_d56_l12_b1024_14MiB_zipf", 65_536, 56, 12, 1024, "zipf"),
        ]
    cap = max_table_bytes

    def dram(tag: str, d: int, lp: int, b: int, k: float, dist: str = "uniform") -> Workload:
        return _sized(tag, d, lp, b, k, llc, dist, dram=True, max_table_bytes=cap)

    return [
        _w("h3_d80_l6_b8192_375KiB_uni", 1200, 80, 6, 8192),
        _w("h3_d144_l3_b2048_288KiB_zipf", 512, 144, 3, 2048, "zipf"),
        _sized("h3_d56_l28_b1024", 56, 28, 1024, 0.125, llc),
        _sized("h3_d200_l2_b32768", 200, 2, 32_768, 0.4, llc, "zipf"),
        _sized("h3_d120_l5_b4096", 120, 5, 4096, 0.75, llc),
        dram("h3_d20_l36_b2048", 20, 36, 2048, 10),
        dram("h3_d112_l6_b16384", 112, 6, 16_384, 12),
        dram("h3_d72_l1_b65536", 72, 1, 65_536, 15),
        dram("h3_d176_l16_b1024", 176, 16, 1024, 9),
        dram("h3_d240_l3_b8192", 240, 3, 8192, 13),
        dram("h3_d160_l24_b2048", 160, 24, 2048, 16),
        dram("h3_d48_l64_b512", 48, 64, 512, 11, "zipf"),
        dram("h3_d88_l12_b4096", 88, 12, 4096, 10, "zipf"),
        dram("h3_d32_l2_b32768", 32, 2, 32_768, 14, "zipf"),
    ]


def cpu_heldout_set_for(info: dict[str, Any], which: str, quick: bool = False) -> list[Workload]:
    """Held-out set ``which`` (:data:`HELDOUT_SETS`) of the machine a record describes: sized
    from its largest cache, tables capped at a quarter of its memory."""
    make = cpu_heldout if heldout_key(which) == "heldout" else cpu_heldout_v3
    mem = float(info.get("memory_bytes") or 0)
    return make(quick, machine_llc_bytes(info), mem / 4 if mem > 0 else None)


def gpu_heldout(quick: bool = False) -> list[Workload]:
    """Held-out GPU workloads: dims 16-256, pooling 1-64, batch 512-65,536, tables from L2-resident
    (0.5 MiB, the H100 L2 is 50 MB) to 2.6 GB, uniform and Zipf(1.05). Calibration uses dims
    8/16/40/64/128/200/320 at pooling 2/8/32 with batches 8,192 and 65,536 on 10M-row uniform
    tables; no held-out workload is one of those (same rows, dim, pooling, batch and skew)."""
    if quick:
        return [
            _w("q_d32_l8_b4096_uni", 100_000, 32, 8, 4096),
            _w("q_d96_l4_b2048_zipf", 50_000, 96, 4, 2048, "zipf"),
        ]
    return [
        _w("g_d32_l16_b65536_1.3GB_uni", 10_000_000, 32, 16, 65_536),
        _w("g_d256_l8_b16384_2GB_uni", 2_000_000, 256, 8, 16_384),
        _w("g_d96_l20_b32768_1.9GB_uni", 5_000_000, 96, 20, 32_768),
        _w("g_d16_l64_b16384_1.3GB_uni", 20_000_000, 16, 64, 16_384),
        _w("g_d48_l4_b65536_1.9GB_uni", 10_000_000, 48, 4, 65_536),
        _w("g_d128_l1_b65536_2.6GB_uni", 5_000_000, 128, 1, 65_536),
        _w("g_d64_l48_b8192_2.6GB_zipf", 10_000_000, 64, 48, 8192, "zipf"),
        _w("g_d32_l24_b65536_0.5MiB_uni", 4096, 32, 24, 65_536),
        _w("g_d128_l12_b4096_26MB_uni", 50_000, 128, 12, 4096),
        _w("g_d24_l40_b512_1GB_uni", 10_000_000, 24, 40, 512),
        _w("g_d160_l16_b16384_1.9GB_zipf", 3_000_000, 160, 16, 16_384, "zipf"),
        _w("g_d256_l32_b2048_1GB_uni", 1_000_000, 256, 32, 2048),
        _w("g_d16_l8_b65536_1.9GB_zipf", 30_000_000, 16, 8, 65_536, "zipf"),
    ]


def gpu_calibration(quick: bool = False) -> list[Workload]:
    """GPU calibration points (version 2 of the probe; version 1 had only the first group):

    * rows of 32 to 1,280 B (dims 8/16/40/64/128/200/320, the points of the model's
      gather-efficiency table), pooling 2/8/32, batches 8,192 and 65,536, uniform indices into
      10M-row tables (0.32-12.8 GB, far beyond the L2; the small batches' three cycled batches
      are L2-resident once warm);
    * 32-B-sector-aligned power-of-two rows 128 B and 1,024 B (dims 32 and 256), same grid;
    * pooling 1 (one output row per lookup: the per-bag output term) at dims 8/40/200/320,
      batch 65,536, and dim 64, batch 16,384, on 10M rows;
    * L2-resident uniform tables (2-40 MB) and one of ~154 MB (about three L2s: partial hits);
    * two Zipf(1.05) tables (4M x 128 B, 1M x 512 B).

    Every point differs from every held-out workload of :func:`gpu_heldout` in at least one of
    (rows, dim, pooling, batch, distribution); of the version-2 points none shares dim, pooling
    and batch with one (version 1's ``c_d16_l8_b65536`` does with the Zipf held-out
    ``g_d16_l8_b65536_1.9GB_zipf``, on another table and distribution).
    """
    if quick:
        out = [
            _w(f"c_d{d}_l{lp}_b4096", 200_000, d, lp, 4096) for d in (16, 64, 128) for lp in (2, 16)
        ]
        out += [
            _w("c_d64_l1_b8192", 200_000, 64, 1, 8192),
            _w("c_d64_l8_b4096_1MiB_uni", 4096, 64, 8, 4096),
            _w("c_d128_l4_b2048_2MiB_uni", 4096, 128, 4, 2048),
            _w("c_d32_l8_b2048_zipf", 100_000, 32, 8, 2048, "zipf"),
        ]
        return out
    out = []
    for d in (8, 16, 40, 64, 128, 200, 320):
        for lp in (2, 8, 32):
            for b in (8192, 65_536):
                out.append(_w(f"c_d{d}_l{lp}_b{b}", 10_000_000, d, lp, b))
    for d in (32, 256):
        for lp in (2, 8, 32):
            for b in (8192, 65_536):
                out.append(_w(f"c_d{d}_l{lp}_b{b}", 10_000_000, d, lp, b))
    for d in (8, 40, 200, 320):
        out.append(_w(f"c_d{d}_l1_b65536", 10_000_000, d, 1, 65_536))
    out.append(_w("c_d64_l1_b16384", 10_000_000, 64, 1, 16_384))
    out += [
        _w("c_d128_l4_b32768_2MiB_uni", 4096, 128, 4, 32_768),
        _w("c_d64_l8_b16384_4MiB_uni", 16_384, 64, 8, 16_384),
        _w("c_d16_l32_b8192_16MiB_uni", 262_144, 16, 32, 8192),
        _w("c_d40_l16_b16384_40MB_uni", 250_000, 40, 16, 16_384),
        _w("c_d64_l16_b65536_154MB_uni", 600_000, 64, 16, 65_536),
        _w("c_d32_l16_b32768_0.5GB_zipf", 4_000_000, 32, 16, 32_768, "zipf"),
        _w("c_d128_l8_b16384_0.5GB_zipf", 1_000_000, 128, 8, 16_384, "zipf"),
    ]
    return out


def gpu_crosscheck() -> list[Workload]:
    """The six H100 runs of reference/data.md §5.2 (N = 10,131,227 rows, B = 65,536, D 16/64/128,
    L 1/32, uniform): re-measured by the probe as a cross-check, not used in the fit."""
    return [
        _w(f"x_d{d}_l{lp}_b65536", 10_131_227, d, lp, 65_536)
        for d in (16, 64, 128)
        for lp in (1, 32)
    ]
