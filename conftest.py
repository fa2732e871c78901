"""Root pytest configuration: shared fixtures live in tests/fixtures/, one module per concern."""

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.models",
    "tests.fixtures.backbones",
    "tests.fixtures.bundles",
    "tests.fixtures.default_model",
    "tests.fixtures.services",
]
