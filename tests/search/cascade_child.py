"""Child process of the cascade write-back kill test.

``python -m tests.search.cascade_child UPGRADE`` opens the upgrade and runs cascade searches of random toy
queries forever (each encodes old-partition candidates and writes them back every 8 items); it prints
``searching`` once the first write-back is committed. The parent SIGKILLs it at a random moment.
"""

from __future__ import annotations

import sys

import numpy as np

from hotswap.search import Searcher
from hotswap.upgrade import open_upgrade
from tests.backfill.toy import NEW_DIM, OLD_DIM, ToyEncoder, fetch


def main() -> None:
    up = open_upgrade(sys.argv[1])
    searcher = Searcher.for_upgrade(up, new_encoder=ToyEncoder(delay=0.02), texts=fetch, flush_every=8)
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    told = False
    while True:
        Q_new = rng.standard_normal((2, NEW_DIM)).astype(np.float32)
        Q_old = rng.standard_normal((2, OLD_DIM)).astype(np.float32)
        searcher.search((Q_new, Q_old), 5, "cascade", up.new_model_id, candidates=6, candidate_query="old")
        if not told and searcher.cascade_stats()["written"]:
            print("searching", flush=True)
            told = True


if __name__ == "__main__":
    main()
