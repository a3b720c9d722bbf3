"""Root conftest: registers the fixture plugins that start real services for the suite.

Each plugin starts its service lazily (only when a test asks for its fixture) and once per session.
"""

pytest_plugins = [
    "tests.plugins.isolation",
    "tests.plugins.sandbox",
    "tests.plugins.services",
    "tests.plugins.jupyter",
]
