"""How many threads torch, OpenCV and the BLAS libraries use: decided by the app, per engine.

Measured on a busy 2-core machine (issue #7): a 29 s warp render took 28 s wall with the libraries'
default threads against 12.8 s with one thread each. The warp engine's small per-frame ops gain
nothing from more threads and lose a lot to contention, so renders set the engine's own count for
their duration (`Engine.threads`) and restore the previous settings afterwards, whatever the
user's environment (OMP_NUM_THREADS) says.

torch is limited only when something has loaded it already (the MOFA engine does when it is chosen): a
warp render never loads torch, which saves about a second of start-up. A torch model loaded inside the
block (the SadTalker driver) keeps torch's default, one thread per core.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` threads in torch, OpenCV and BLAS/OpenMP pools (None: unchanged)."""
    if threads is None:
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    saved_torch, saved_cv2 = torch.get_num_threads() if torch else None, cv2.getNumThreads()
    if torch:
        torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch:
            torch.set_num_threads(saved_torch)
        cv2.setNumThreads(saved_cv2)
