"""Self-tests of the harness: pytester runs the plugin in small harness checkouts."""

pytest_plugins = ["pytester"]


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    config.addinivalue_line(
        "markers", "e2e: runs the real harness on the local stack (minutes)"
    )
