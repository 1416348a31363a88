"""CI assertions: rules, profiles, JUnit output, baselines, the pytest plugin."""
