"""The running node: transports, resolution pipeline, REST app, CLI."""
