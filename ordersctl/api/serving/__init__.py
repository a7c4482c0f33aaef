"""Serving the app: waitress, one or more processes, draining on SIGTERM, one send per response."""
