"""The WebSocket edge: the transcript socket and its routing."""
