"""The plugin layer: loading plugins and calling their hooks for the planner."""
