"""Embedding model: ResNet18 on log-Mel segments, checkpoints and batched embedding."""
