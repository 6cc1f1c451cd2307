"""The server-rendered web UI (Jinja2 templates + vendored htmx), logged-in users only."""
