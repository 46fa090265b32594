"""The ``"process"`` backend: a pool of worker processes, both halves side by side.

Parent side: ``_engine.py`` (the pool's I/O thread), ``_workers.py`` (a worker
and the status board as that thread sees them), ``_channel.py`` (the parent's
non-blocking end of a worker's pipes), ``_jobs.py`` and ``_ledger.py`` (what
each item's outcome is). Worker side: ``_loop.py`` (the loop a worker runs),
which also defines the frames both sides exchange.

Empty on purpose: a worker imports this package to reach ``_loop``, and must
not load the parent side with it (tests/test_imports.py).
"""
