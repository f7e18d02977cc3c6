"""The alert engine: pure, vectorized rules (numpy), the alert lifecycle and the store that writes it.

Rules never read the clock (they take `now`) and never write: they return `AlertRequest`s and
`AlertClear`s; `alerts.lifecycle.transition` decides what that (or a person, or a timer) means for
the alert, and `alerts.store` is the one writer of the result.
"""
