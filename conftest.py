"""Load one fixture module per layer of the stack; the plugin does the rest."""

pytest_plugins = [
    "fixtures.cloud",
    "fixtures.overlay",
    "fixtures.cluster",
    "fixtures.lb",
    "fixtures.mesh",
    "fixtures.apps",
    "fixtures.load",
    "fixtures.slo",
]
