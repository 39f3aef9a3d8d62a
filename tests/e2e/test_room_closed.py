"""When a session ends, its LiveKit room is deleted on the real server: whoever is still in
it is disconnected, and the tokens minted for it cannot bring it back, not even once the
room name has passed to another visitor (each claim of a name has a LiveKit room of its
own). In a live room, the page plays the agent's audio and nobody else's.

The participants are LiveKit clients from Python (tests/e2e/livekit_clients.py): the
person, who joins with the token GET /token gave them (before POST /session, as the page
does), and a listener holding another valid token for the room, who tries to stay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from livekit import api as lkapi
from livekit import rtc
from playwright.sync_api import Page

from app.voice.sessions.media_rooms import room_of
from devtools.stack import LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET, Stack
from tests.e2e.livekit_clients import LoopThread, rooms_on_server
from tests.e2e.support import Api, open_chat, press_start, press_stop, unique, wait_until, wait_until_ended


def media_room(grant: dict[str, Any]) -> str:
    """The LiveKit room a GET /token answer joins (its JWT's room grant)."""
    return str(jwt.decode(grant["token"], options={"verify_signature": False})["video"]["room"])


def listener_token(room: str) -> str:
    """Another valid token for the (LiveKit) room: joining and listening, for its lifetime."""
    grants = lkapi.VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=True)
    return (
        lkapi.AccessToken(LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET)
        .with_identity(unique("listener"))
        .with_grants(grants)
        .with_ttl(timedelta(minutes=15))
        .to_jwt()
    )


@pytest.mark.parametrize("ending", ["delete", "person_leaves"])
def test_the_room_is_closed_when_the_session_ends(stack: Stack, api: Api, clients: LoopThread, ending: str) -> None:
    room, identity = unique("closed"), unique("guest")
    status, grant = api.get(f"/token?room={room}&identity={identity}")
    assert status == 200, grant
    person = clients.participant(grant["url"], grant["token"])
    listener = clients.participant(grant["url"], listener_token(media_room(grant)))
    clients.run(person.join())  # the token works at once: GET /token created the room

    status, body = api.post("/session", {"room": room, "identity": identity})
    assert status == 201, body
    session_id = body["session_id"]
    clients.run(listener.join())
    agent = f"agent-{session_id[:8]}"
    wait_until(lambda: agent in listener.others() and identity in listener.others(), 20, "the listener sees both")
    assert media_room(grant) in clients.run(rooms_on_server(stack.livekit_url))

    if ending == "delete":
        assert api.delete(f"/session/{session_id}")[0] == 204
    else:
        clients.run(person.leave())
    session, _ = wait_until_ended(api, session_id, 30)
    assert session["end_reason"] == ("deleted" if ending == "delete" else "participant_left")

    # The listener tried to stay: the server threw it out because the room was deleted.
    wait_until(lambda: listener.disconnect_reason is not None, 15, "the listener to be disconnected")
    assert listener.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED
    if ending == "delete":
        wait_until(lambda: person.disconnect_reason is not None, 15, "the person to be disconnected")
        assert person.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED

    # Neither token, both still within their lifetime, gets back in or re-creates the room.
    for who in (listener, person):
        again = clients.participant(who.url, who.token)
        with pytest.raises(rtc.ConnectError):
            clients.run(again.join())
    assert media_room(grant) not in clients.run(rooms_on_server(stack.livekit_url))


def test_a_token_kept_from_an_earlier_claim_cannot_join_the_names_next_owner(
    stack: Stack, api: Api, clients: LoopThread
) -> None:
    """The eavesdropping finding: visitor A keeps the token of room R after its session ends;
    visitor B later takes R and talks. A's token, still within its lifetime, gets nowhere."""
    room, ann, ben = unique("reused"), unique("ann"), unique("ben")
    status, a_grant = api.get(f"/token?room={room}&identity={ann}")
    assert status == 200, a_grant
    a = clients.participant(a_grant["url"], a_grant["token"])
    clients.run(a.join())
    status, body = api.post("/session", {"room": room, "identity": ann})
    assert status == 201, body
    assert api.delete(f"/session/{body['session_id']}")[0] == 204
    wait_until(lambda: a.disconnect_reason is not None, 15, "A to be disconnected")

    b_api = Api(stack.backend_url)
    status, b_grant = b_api.get(f"/token?room={room}&identity={ben}")
    assert status == 200, b_grant  # the name passed to B
    b = clients.participant(b_grant["url"], b_grant["token"])
    clients.run(b.join())
    status, body = b_api.post("/session", {"room": room, "identity": ben})
    assert status == 201, body
    agent = f"agent-{body['session_id'][:8]}"
    wait_until(lambda: agent in b.others(), 20, "the agent in B's room")

    intruder = clients.participant(a.url, a.token)
    with pytest.raises(rtc.ConnectError):
        clients.run(intruder.join())
    assert b.others() == {agent}  # B's room holds B and the agent, nobody else
    on_server = clients.run(rooms_on_server(stack.livekit_url))
    assert media_room(b_grant) in on_server and media_room(a_grant) not in on_server
    assert {room_of(media_room(a_grant)), room_of(media_room(b_grant))} == {room}
    assert b_api.delete(f"/session/{body['session_id']}")[0] == 204


def test_the_page_plays_only_the_agents_audio(page: Page, stack: Stack, clients: LoopThread) -> None:
    """Someone else in the page's LiveKit room (here with a token forged from the server's
    key) publishes audio: the page does not play it, as it would have played a second
    'agent' before."""
    room = unique("only-agent")
    open_chat(page, stack, room=room, identity=unique("guest"))
    press_start(page)
    audio_elements = "() => document.querySelectorAll('audio').length"
    page.wait_for_function(audio_elements + " === 1")  # the agent's
    [livekit_room] = [r for r in clients.run(rooms_on_server(stack.livekit_url)) if room_of(r) == room]
    other = clients.participant(stack.livekit_url, listener_token(livekit_room))
    with page.expect_console_message(lambda m: "not the agent" in m.text, timeout=20_000):
        clients.run(other.join())
        clients.run(other.publish_tone())
    assert page.evaluate(audio_elements) == 1
    assert page.evaluate("() => document.getElementById('agent-audio').srcObject.getAudioTracks().length") == 1
    press_stop(page)
