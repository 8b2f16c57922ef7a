"""Fused recurrent kernels (Triton; the ``gpu`` extra): a whole sequence in one launch per direction.

Each kernel computes exactly what a cell's step loop computes and is tested equal to it; a cell chooses
its kernel with ``engine="triton"``. Modules here import Triton at import time, so import them only
when that engine is asked for (`longrnn.cells.triton_sequences.triton_kernels` does, after checking
the device and the extra).
"""
