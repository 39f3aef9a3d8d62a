"""Deterministic stand-ins for the paid cloud providers (STT, LLM, TTS).

Selected by settings (``VOICE_PROVIDERS=fake``); production code never imports
this package. Each fake implements the same livekit-agents base class as the
real plugin, so the pipeline cannot tell them apart.
"""
