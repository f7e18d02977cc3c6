"""The gateway's error types. Messages say what an operator can do about them."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class for errors raised by the home gateway."""


class QueueFull(GatewayError):
    """The store-and-forward queue cannot take more bytes (disk or quota full).

    Nothing was written and nothing was dropped: the caller keeps the message and retries,
    which is the back-pressure the queue applies.
    """


class QueueLocked(GatewayError):
    """Another process already holds this queue file (two gateways on one queue would duplicate data)."""


class ConfigurationError(GatewayError):
    """A setting the gateway needs is missing or invalid."""
