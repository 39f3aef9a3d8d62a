from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "app.voice"
    label = "voice"
