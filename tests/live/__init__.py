"""End-to-end tests of the live modes (``cfgsync apply``, ``cfgsync run``) on a real API server."""
