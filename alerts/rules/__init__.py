"""Pure alert rules: frozen config plus ``evaluate(rule, state, input, now) -> (state, transitions)``."""
