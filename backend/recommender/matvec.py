"""Matrix × vector over a whole catalogue, on the calling thread."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def matvec(
    matrix: npt.NDArray[np.float32], vector: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``matrix @ vector`` without BLAS's threads.

    numpy hands a product this size (100k × 64) to OpenBLAS, which splits it over both cores;
    on a shared 2-core server the second thread waits for a core and the request waits for it
    (measured beside 3 busy processes: 16 ms median, 0.3 ms at best), and requests served
    concurrently queue on OpenBLAS's one thread pool. einsum's own loop takes ~1 ms on one
    core whatever the load, with the same float32 arithmetic.
    """
    out: npt.NDArray[np.float32] = np.einsum("ij,j->i", matrix, vector)
    return out
