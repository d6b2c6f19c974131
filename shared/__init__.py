"""What the gateway and the worker share: settings, names, wire formats and logging."""
