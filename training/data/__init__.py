"""Samples and labels: reading a folder or CT2 parquet, augmentation, train/val split, the multi-task loss."""
