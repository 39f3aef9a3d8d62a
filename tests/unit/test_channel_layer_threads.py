"""An agent worker runs each session on an event loop of its own thread; the Redis channel
layer keeps per-loop state, so each such loop must get a layer instance of its own, or stop
requests meant for one session are lost (a soak run left sessions running that way)."""

from __future__ import annotations

import asyncio
import threading

from django.test import override_settings

from app.voice.sessions.groups import channel_layer, close_thread_channel_layer


def _session_thread(name: str, ready: threading.Event, heard: dict[str, object]) -> threading.Thread:
    async def listen() -> None:
        layer = channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(f"agent.{name}", channel)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0)  # one turn of the loop: the task is now inside receive()
        ready.set()
        try:
            heard[name] = await asyncio.wait_for(receiving, 10)
        except (TimeoutError, RuntimeError) as exc:
            heard[name] = repr(exc)
        finally:
            await layer.group_discard(f"agent.{name}", channel)
            await close_thread_channel_layer()

    return threading.Thread(target=asyncio.run, args=(listen(),), name=f"session-{name}")


async def test_sessions_on_loops_of_their_own_threads_each_receive_their_stop(redis_url: str) -> None:
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        assert type(channel_layer()).__name__ == "RedisChannelLayer"
        heard: dict[str, object] = {}
        ready = {name: threading.Event() for name in ("ana", "ben", "cleo")}
        threads = [_session_thread(name, ready[name], heard) for name in ready]
        for thread in threads:
            thread.start()
        for event in ready.values():
            assert await asyncio.to_thread(event.wait, 10)
        for name in ready:  # as DELETE /session does, from the web process's loop
            await channel_layer().group_send(f"agent.{name}", {"type": "session.stop", "for": name})
        for thread in threads:
            await asyncio.to_thread(thread.join, 15)

    assert heard == {name: {"type": "session.stop", "for": name} for name in ready}
