"""The OpenAI API, offline: a local server that speaks OpenAI's wire protocol for the
endpoints the voice agent uses, backed by engines that run on a CPU with no key and no
network (faster-whisper for speech recognition, Piper for speech synthesis, a rule-based
reply policy in the chat model's place).

The agent's production provider code (``livekit-plugins-openai``) talks to it exactly as it
talks to OpenAI, so every offline run, test and benchmark exercises the product's own path.
Importable without Django; run as its own process: ``python -m offline_openai``.
"""
