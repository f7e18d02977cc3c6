"""The errors `device_profiles` raises: one per kind of bad input, both `ValueError`s."""

from __future__ import annotations


class DeviceProfilesError(ValueError):
    """Base of every error this package raises for bad input."""


class DecodeError(DeviceProfilesError):
    """A characteristic value that does not follow its GATT Specification Supplement layout.

    Raised for truncated or over-long payloads, impossible field values (a month 13, a
    battery level of 250 %) and UUIDs this package has no decoder for. The message names the
    characteristic and the field, so the dead-letter store tells an operator what to look at.
    """


class ProfileError(DeviceProfilesError):
    """A device profile file that cannot be loaded. The message names the file and the field."""
