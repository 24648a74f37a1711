"""The embedding networks (128-d, unit length), their weights specs and batched inference."""
