"""Distances, 1:1 verification and 1:K identification on an in-memory gallery matrix."""
