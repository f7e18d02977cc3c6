"""The alert engine: pure, vectorized rules (numpy) and the alert store that applies their requests.

Rules never read the clock (they take `now`) and never write: they return `AlertRequest`s and
`AlertClear`s, and `alerts.store` decides what that means for the alert's lifecycle.
"""
