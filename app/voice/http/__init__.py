"""The HTTP edge: DRF views that validate, call the session services, and shape answers."""
