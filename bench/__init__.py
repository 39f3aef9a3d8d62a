"""Benchmarks: voice-to-voice latency, overhead against a bare livekit-agents
session, capacity, WebSocket fan-out and API throughput. ``python -m bench --help``."""
