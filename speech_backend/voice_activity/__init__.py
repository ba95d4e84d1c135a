"""Voice activity (the Silero VAD model) and endpointing: where live utterances start and end."""
