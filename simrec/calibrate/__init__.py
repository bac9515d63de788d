"""Calibration of simrec's hardware models against the machine it runs on.

* :mod:`simrec.calibrate.heldout` — the fixed workloads (calibration points and the held-out
  validation set) and their seeded index generator; numpy only, so the GPU probe can use it.
* :mod:`simrec.calibrate.bench_cpu` — CPU microbenchmarks (bandwidth, pointer chase, gathers,
  embedding-bag with numpy/numba and PyTorch).
* :mod:`simrec.calibrate.gpu_probe` — the self-contained GPU measurement script (torch + numpy).
* :mod:`simrec.calibrate.cpu_probe` — the self-contained CPU measurement script (numpy + numba,
  torch optional): calibration benchmarks and the held-out workloads in one JSON.
* :mod:`simrec.calibrate.fit` — fitting the CPU-DRAM and GPU model parameters, with residuals
  (the CPU-DRAM fit itself is :mod:`simrec.calibrate.cpufit`).
* :mod:`simrec.calibrate.preset` — writing the measured preset YAML and its JSON record.
* :mod:`simrec.calibrate.validate` — ``simrec validate --measure``: held-out error table.
* :mod:`simrec.calibrate.cli` — the ``simrec calibrate`` click command.

This package imports nothing at import time so that ``python3 -m simrec.calibrate.gpu_probe`` and
``python3 -m simrec.calibrate.cpu_probe`` run on a machine that has only numpy and torch / numba.
"""
