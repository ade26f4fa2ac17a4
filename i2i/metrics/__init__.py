"""Metrics (tensors in, accumulate, gather under multi-process evaluation)."""
