"""minigan: a from-scratch GAN engine on NumPy (CPU) and CuPy (GPU)."""
__version__ = "0.1.0"
