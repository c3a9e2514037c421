"""The long-running camera daemon: live readers, one shared model, the same analysis step and store,
its own metrics and HTTP endpoint."""
