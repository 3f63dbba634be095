"""Reading music files: decoding to mono samples, MIDI rendering and tag reading."""
