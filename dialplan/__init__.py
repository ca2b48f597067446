"""Routing plans and their evaluation: pure functions over plain data, no I/O."""
