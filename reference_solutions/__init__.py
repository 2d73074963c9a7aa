"""The instructor's model answers: one small builder per architecture, plus the full homework notebook."""
