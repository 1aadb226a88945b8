"""Tests of the array kernels."""
