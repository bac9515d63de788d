"""How much of a numpy-allocated embedding table lands on transparent huge pages?

Until 2026-12-03 the CPU probe's tables were plain ``np.full`` arrays; numpy advises its large
allocations onto huge pages itself (``numpy._core.multiarray._get_madvise_hugepage()``), so the
backing was up to the kernel and was not recorded. This allocates the held-out set v2's tables
for this machine one after another, as the probe did, and prints the fraction of each on huge
pages (``/proc/self/smaps``). Run from the repo root: ``python3 benchmarks/numpy_thp_check.py
OUT.json``. It measures no time but the allocation's.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import time

import numpy as np

from simrec.calibrate.bench_cpu import huge_fraction, machine_info  # noqa: E402
from simrec.calibrate.heldout import cpu_heldout_for  # noqa: E402

info = machine_info()
out = []
for w in cpu_heldout_for(info, False):
    t0 = time.perf_counter()
    a = np.full((w.rows, w.dim), 0.01, dtype=np.float32)  # as the probes until 2026-12-03 did
    out.append(
        {
            "name": w.name,
            "bytes": a.nbytes,
            "huge_fraction": huge_fraction(a),
            "s": time.perf_counter() - t0,
        }
    )
    print(out[-1], flush=True)
    del a
Path(sys.argv[1]).write_text(
    json.dumps({"numpy": np.__version__, "thp": info.get("thp"), "tables": out}, indent=1)
)
