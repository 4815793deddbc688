"""Development tools, never installed by requirements.txt: the Hyperline emulator, Segment sample
generators, the demo."""
