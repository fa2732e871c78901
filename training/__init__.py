"""Training: the detector model, its data pipeline, training loop, evaluation and pseudo-labelling."""
