"""The CMP grid's size: the published CMP weights work on a 384 x 384 grid (spec §2.4).

A module of its own so that torch-free code (the drag paths of `trajectories.py`, which the warp engine
uses) can name it without loading `sparse_flow` and torch.
"""

CMP_SIZE = 384  # side of the square grid the published CMP weights work on (spec §2.4)
