"""Array kernels: arrays in, arrays out, with the NumPy and CuPy versions side by side."""
