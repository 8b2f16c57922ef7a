"""Fused recurrent kernels: a whole sequence in one launch per direction (Triton, the ``gpu`` extra), and
the LSTM's and GRU's time loops in C++ for the CPU (`longrnn.kernels.cpu`, built on first use).

Each kernel computes exactly what a cell's step loop computes and is tested equal to it; a cell chooses
its kernel with ``engine="triton"`` or ``engine="cpp"``. The Triton modules import Triton at import
time, so import them only when that engine is asked for (`longrnn.cells.kernel_sequences.triton_kernels`
does, after checking the device and the extra).
"""

# The forget (update) gates by number, as the kernels take them: three single-input gates with a
# closed-form derivative, and the refine gate (two inputs).
GATE_CODES = {"sigmoid": 0, "fast": 1, "softsign": 2, "refine": 3}
