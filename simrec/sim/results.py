"""Load models (throughput / latency) and the simulation result shared by all systems.

* ``LoadSpec(kind="throughput", inflight=k)``: batches start back to back, ``k`` in flight at a time;
  a batch's latency is its service time.
* ``LoadSpec(kind="latency", rate_per_s=r, seed=s)``: a Poisson arrival process (exponential gaps of
  mean ``1/r``, seeded), or the trace's own ``arrival_s`` with ``use_trace_arrivals=True``; batches
  queue for the system's resources, latency = completion - arrival.
* ``query_sizes=QuerySizes(...)`` (either load) re-cuts the trace's samples into queries of fixed,
  lognormal or empirical sizes (:func:`split_queries`); each query is then one "batch".

:class:`SimResult` carries throughput, latency percentiles, a per-stage time breakdown, per-component
utilisation and action counters, plus a per-batch table; it writes JSON + CSV (+ Parquet).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import simpy

from simrec.errors import ConfigError, atomic_output
from simrec.trace.format import Batch
from simrec.util import jsonable

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LoadSpec",
    "LoadOutcome",
    "QuerySizes",
    "SimResult",
    "run_load",
    "slice_samples",
    "split_queries",
]


@dataclass(frozen=True)
class QuerySizes:
    """Samples per query in latency mode: ``fixed`` (``size``), ``lognormal`` (median ``size``,
    log-space sigma ``sigma``, rounded, at least 1) or ``empirical`` (drawn uniformly from
    ``values``, e.g. observed query sizes); all clamped to ``max_size`` when given."""

    kind: Literal["fixed", "lognormal", "empirical"] = "fixed"
    size: int = 1
    sigma: float = 0.0
    values: tuple[int, ...] = ()
    max_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "lognormal", "empirical"):
            raise ConfigError(
                f"unknown query-size distribution {self.kind!r}",
                where="query sizes",
                fix="use fixed, lognormal or empirical",
            )
        if self.kind in ("fixed", "lognormal") and self.size < 1:
            raise ConfigError("query size must be >= 1", where="query sizes", fix="e.g. fixed:64")
        if self.kind == "lognormal" and self.sigma < 0:
            raise ConfigError("lognormal sigma must be >= 0", where="query sizes", fix="e.g. 0.5")
        if self.kind == "empirical" and (not self.values or min(self.values) < 1):
            raise ConfigError(
                "empirical query sizes need at least one positive value",
                where="query sizes",
                fix="give observed sizes, one per line",
            )

    def draw(self, rng: np.random.Generator) -> int:
        """One query size."""
        if self.kind == "fixed":
            q = self.size
        elif self.kind == "lognormal":
            q = max(1, round(float(rng.lognormal(math.log(self.size), self.sigma))))
        else:
            q = int(self.values[int(rng.integers(len(self.values)))])
        return min(q, self.max_size) if self.max_size else q


def slice_samples(batch: Batch, start: int, stop: int, number: int = 0) -> Batch:
    """Samples ``[start, stop)`` of a batch as a new table-major CSR batch (all tables)."""
    b, t = batch.batch_size, batch.num_tables
    if not 0 <= start < stop <= b:
        raise ValueError(f"bad sample range [{start}, {stop}) of a batch of {b}")
    offs, idx = [np.zeros(1, dtype=np.int64)], []
    base = 0
    for k in range(t):
        o = np.asarray(batch.offsets[k * b + start : k * b + stop + 1], dtype=np.int64)
        idx.append(batch.indices[o[0] : o[-1]])
        offs.append(o[1:] - o[0] + base)
        base += int(o[-1] - o[0])
    return Batch(
        offsets=np.concatenate(offs),
        indices=np.concatenate(idx),
        num_tables=t,
        dense=None if batch.dense is None else batch.dense[start:stop],
        number=number,
    )


def split_queries(batches: Iterable[Batch], sizes: QuerySizes, seed: int = 0) -> Iterator[Batch]:
    """Re-cut the trace's samples into queries of drawn sizes (a query never spans two trace
    batches: the last query of a batch takes what is left)."""
    rng = np.random.default_rng(seed)
    number = 0
    for batch in batches:
        pos, b = 0, batch.batch_size
        while pos < b:
            q = min(sizes.draw(rng), b - pos)
            yield slice_samples(batch, pos, pos + q, number)
            number += 1
            pos += q


@dataclass(frozen=True)
class LoadSpec:
    """How batches arrive (see the module docstring)."""

    kind: Literal["throughput", "latency"] = "throughput"
    inflight: int = 1
    rate_per_s: float | None = None
    seed: int = 0
    use_trace_arrivals: bool = False
    max_batches: int | None = None
    query_sizes: QuerySizes | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("throughput", "latency"):
            raise ConfigError(
                f"unknown load kind {self.kind!r}", where="load", fix="use throughput or latency"
            )
        if self.inflight < 1:
            raise ConfigError("inflight must be >= 1", where="inflight", fix="e.g. 1")
        if (
            self.kind == "latency"
            and not self.use_trace_arrivals
            and not (self.rate_per_s and self.rate_per_s > 0)
        ):
            raise ConfigError(
                "latency mode needs a positive arrival rate",
                where="rate",
                fix="give --rate QUERIES_PER_S, or use the trace's arrival times",
            )


@dataclass
class LoadOutcome:
    """Per-batch arrival/start/finish times and sizes."""

    arrival_s: list[float] = field(default_factory=list)
    finish_s: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    lookups: list[int] = field(default_factory=list)
    end_s: float = 0.0


def run_load(
    env: simpy.Environment,
    batches: Iterable[Batch],
    serve: Callable[[Batch], Generator[Any, Any, Any]],
    spec: LoadSpec,
) -> LoadOutcome:
    """Drive ``serve(batch)`` processes with the load ``spec``; runs ``env`` to completion."""
    out = LoadOutcome()
    if spec.query_sizes is not None:
        if spec.use_trace_arrivals:
            raise ConfigError(
                "query sizes re-cut the trace's batches, so their arrival times no longer apply",
                where="load",
                fix="use --rate with query sizes, or keep the trace's batches",
            )
        batches = split_queries(batches, spec.query_sizes, spec.seed + 1)
    it = iter(batches)
    count = [0]

    def take() -> Batch | None:
        if spec.max_batches is not None and count[0] >= spec.max_batches:
            return None
        b = next(it, None)
        if b is not None:
            count[0] += 1
        return b

    def record(batch: Batch, t_arr: float) -> Generator[Any, Any, None]:
        i = len(out.arrival_s)
        out.arrival_s.append(t_arr)
        out.finish_s.append(math.nan)
        out.samples.append(batch.batch_size)
        out.lookups.append(batch.num_lookups)
        yield from serve(batch)
        out.finish_s[i] = float(env.now)

    if spec.kind == "throughput":

        def slot() -> Generator[Any, Any, None]:
            while (b := take()) is not None:
                yield from record(b, float(env.now))

        for _ in range(spec.inflight):
            env.process(slot())
    else:
        rng = np.random.default_rng(spec.seed)

        def source() -> Generator[Any, Any, None]:
            t_prev = 0.0
            while (b := take()) is not None:
                if spec.use_trace_arrivals:
                    if b.arrival_s is None:
                        raise ConfigError(
                            f"batch {b.number} has no arrival time",
                            where=f"batch {b.number}",
                            fix="give --rate for Poisson arrivals instead",
                        )
                    t_arr = max(float(b.arrival_s), t_prev)
                else:
                    t_arr = t_prev + float(rng.exponential(1.0 / float(spec.rate_per_s)))  # type: ignore[arg-type]
                t_prev = t_arr
                if t_arr > env.now:
                    yield env.timeout(t_arr - float(env.now))
                env.process(record(b, float(env.now)))

        env.process(source())
    env.run()
    out.end_s = float(env.now)
    return out


@dataclass
class SimResult:
    """What a simulation produced (SI units: seconds, bytes)."""

    system: str
    kind: str
    mode: str
    load: str
    batches: int
    samples: int
    lookups: int
    sim_time_s: float
    samples_per_s: float
    lookups_per_s: float
    latency_s: dict[str, float]
    breakdown_s: dict[str, float]
    utilisation: dict[str, float]
    counters: dict[str, float]
    wall_s: float
    per_batch: pd.DataFrame
    #: system-specific keys added to :meth:`to_dict` (e.g. SCRec's ``devices``, ``speedup_vs``)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        system: str,
        kind: str,
        mode: str,
        load: LoadOutcome,
        breakdown_s: dict[str, float],
        utilisation: dict[str, float],
        counters: dict[str, float],
        wall_s: float,
        load_kind: str = "",
    ) -> SimResult:
        arr = np.asarray(load.arrival_s, dtype=np.float64)
        fin = np.asarray(load.finish_s, dtype=np.float64)
        lat = fin - arr
        samples = int(np.sum(load.samples))
        lookups = int(np.sum(load.lookups))
        t = load.end_s
        if len(lat):
            q = np.percentile(lat, [50, 95, 99])
            latency = {
                "mean": float(lat.mean()),
                "p50": float(q[0]),
                "p95": float(q[1]),
                "p99": float(q[2]),
                "max": float(lat.max()),
            }
        else:
            latency = dict.fromkeys(("mean", "p50", "p95", "p99", "max"), 0.0)
        import pandas as pd  # here, not at import: keeps `simrec --help` free of pandas

        df = pd.DataFrame(
            {
                "batch": np.arange(len(arr)),
                "arrival_s": arr,
                "finish_s": fin,
                "latency_s": lat,
                "samples": np.asarray(load.samples, dtype=np.int64),
                "lookups": np.asarray(load.lookups, dtype=np.int64),
            }
        )
        return cls(
            system=system,
            kind=kind,
            mode=mode,
            load=load_kind,
            batches=len(arr),
            samples=samples,
            lookups=lookups,
            sim_time_s=t,
            samples_per_s=samples / t if t > 0 else 0.0,
            lookups_per_s=lookups / t if t > 0 else 0.0,
            latency_s=latency,
            breakdown_s=dict(breakdown_s),
            utilisation=dict(utilisation),
            counters=dict(counters),
            wall_s=wall_s,
            per_batch=df,
        )

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary (the ``simrec simulate --json`` object)."""
        return {
            "system": self.system,
            "kind": self.kind,
            "mode": self.mode,
            "load": self.load,
            "batches": self.batches,
            "samples": self.samples,
            "lookups": self.lookups,
            "sim_time_s": self.sim_time_s,
            "samples_per_s": self.samples_per_s,
            "lookups_per_s": self.lookups_per_s,
            "latency_s": self.latency_s,
            "breakdown_s": self.breakdown_s,
            "utilisation": self.utilisation,
            "counters": self.counters,
            "wall_s": self.wall_s,
            "simulated_lookups_per_wall_s": self.lookups / self.wall_s if self.wall_s else 0.0,
            **self.extra,
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``result.json``, ``batches.csv`` and ``batches.parquet`` under ``out_dir``."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        with atomic_output(d / "result.json") as tmp:
            tmp.write_text(json.dumps(jsonable(self.to_dict()), indent=2, sort_keys=True) + "\n")
        paths.append(d / "result.json")
        with atomic_output(d / "batches.csv") as tmp:
            self.per_batch.to_csv(tmp, index=False)
        paths.append(d / "batches.csv")
        with atomic_output(d / "batches.parquet") as tmp:
            self.per_batch.to_parquet(tmp, index=False)
        paths.append(d / "batches.parquet")
        return paths
