"""Test doubles shipped for tunepilot's own tests and for users' tests.

Each one stands in for a real part only where a fault must be injected.
"""

__all__: list[str] = []
