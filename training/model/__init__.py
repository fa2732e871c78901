"""The detector: CLIP tower, image and text branches, fusion, checkpoint format, frozen features, prediction."""
