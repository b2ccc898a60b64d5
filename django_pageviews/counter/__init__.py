"""Public view counters: opt-in per path or model, JSON or an SVG badge."""
