"""simrec: simulate and cost the hardware that serves deep-learning recommendation models.

The flow (see docs/ and DESIGN): trace (``simrec.trace``) -> profile (``simrec.trace.stats``) ->
plan (``simrec.shard``) -> simulate (``simrec.sim``) -> energy and reports.
"""

__version__ = "0.1.0"
