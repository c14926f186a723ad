"""numpy's BLAS and OpenMP on one thread in the processes that serve requests and events.

OpenBLAS splits a product over every core and then keeps its threads spinning for the next
one. Serving only does one shopper's matrix-vector products at a time, on the request's own
thread, with other requests ready to use the second core: measured on this 2-core machine
(bench/storefront_targets.py, uncached GET /recommend at 10,000 products, the same code on
two servers), OpenBLAS's extra thread burned 8.4 ms of CPU per request, more than the
request's own thread, and one thread cut the server's CPU per request 16.2 → 6.2 ms. Batch
jobs (``shopwise train``, ``shopwise evaluate``) keep every thread.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

# Read by each library when it loads: scipy's own OpenBLAS and torch's OpenMP load after the
# process starts (the first training, the first next-item model).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_per_request() -> None:
    """One thread for every BLAS and OpenMP library, loaded already or later, in this
    process and the processes it starts."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(limits=1)  # the ones loaded already (numpy's OpenBLAS)
