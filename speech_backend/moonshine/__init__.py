"""Moonshine tiny (English): a recognizer sized to short utterances, for live finals."""
