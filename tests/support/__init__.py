"""Helpers shared by the test modules (servers started in-process, seed data)."""
