from django.apps import AppConfig


async def _close_room(room: str) -> None:
    # Imported on first use: the gateway pulls in livekit-agents, which management
    # commands do not need; every process that ends sessions has it loaded already.
    from app.voice.agent.livekit_gateway import close_room

    await close_room(room)


class VoiceConfig(AppConfig):
    name = "app.voice"
    label = "voice"

    def ready(self) -> None:
        # Wiring across the layers: ending a session (sessions) closes its LiveKit room
        # through the gateway (agent), which the sessions layer may not import.
        from app.voice.sessions import ending

        ending.set_room_closer(_close_room)
