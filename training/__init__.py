"""Training: the detector model, its data pipeline, training loop, evaluation and CT2 tools.

Folders follow the path from a dataset to a chosen model; each imports only those before it
(lazy imports included; checked by ``tests/training/test_import_order.py``):

``config.py`` (the recipe every folder reads; its JSON files are in ``configs/``)
-> ``data/`` (samples, labels, augmentation, the loss over those labels)
-> ``model/`` (CLIP tower, branches, fusion, checkpoint format, frozen features, prediction)
-> ``loop/`` (``genspot train``: processes, epochs, metrics, calibration, curves)
-> ``evaluation/`` (``genspot evaluate``, ``genspot cv``: operating point, plots, model runners)
-> ``ct2/`` (the CT2 challenge: ``genspot predict`` submissions, ``genspot pseudo-label`` rounds).
"""
