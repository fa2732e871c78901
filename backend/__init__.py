"""Backend: the Litestar detection service. Depends on the bundle format only, never on training code."""
