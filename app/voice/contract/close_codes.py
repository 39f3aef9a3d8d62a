"""WebSocket close codes of the transcript socket, the one table clients switch on.

    1000  normal: the session ended (a ``session_ended`` message came first)
    4400  the session id in the path is malformed
    4404  no such session (also any WebSocket path other than the transcript one)
    4410  the session has already ended
"""

NORMAL_CLOSURE = 1000
MALFORMED_ID = 4400
UNKNOWN_SESSION = 4404
SESSION_ENDED = 4410
