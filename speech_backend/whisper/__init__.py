"""faster-whisper (CTranslate2): the recognizer, and the optional multilingual model joined from its
registry packages."""
