"""Kernel specifications: which kernels can be started, with their logos and resources."""
