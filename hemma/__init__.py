"""Hemma: remote patient monitoring for hospital-at-home.

This small shared package holds what every part of the system agrees on:
the canonical vital signs (`hemma.vitals`), the wire contract between gateway
and ingest (`hemma.contract`), settings (`hemma.settings`), database
migrations (`hemma.db`) and the `hemma` command line (`hemma.cli`).
"""

__version__ = "0.1.0"
