"""Helpers the whole test suite shares: free ports, OTLP builders and readers, recording ends.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so any test imports them as
``from support.ports import free_port``.
"""
