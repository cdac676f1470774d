"""Classification: detectors (patterns, validators, dictionaries) and the column engine."""
