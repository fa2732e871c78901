"""The detector's evidence: pictures decoded within a pixel budget (``decode``, animation
``frames``) in decode threads (``dispatch``), the model run in micro-batches in its own thread
(``batcher``), clients served in fair turns (``fair``), and freed model memory kept in the
process (``allocator``)."""
