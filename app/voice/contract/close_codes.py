"""WebSocket close codes of the transcript socket, the one table clients switch on.

    1000  normal: the session ended (a ``session_ended`` message came first)
    1003  the client sent a binary frame (the socket carries JSON text only)
    1007  the client sent a text frame that is not valid UTF-8 (closed by the server itself)
    1008  the client sent frames too fast (more than VOICE_WS_FRAME_RATE a second, beyond a
          burst of VOICE_WS_FRAME_BURST)
    1009  the client sent a frame larger than VOICE_WS_MAX_FRAME_BYTES (or than the server's
          --ws-max-size, which refuses it unread)
    1011  the client stopped answering the server's keepalive pings (closed by the server)
    1012  a service the socket depends on failed (Redis restarting, the database
          unreachable): the session may well go on, open the socket again (its replay
          sends the final lines missed meanwhile)
    1013  too many open sockets: VOICE_WS_MAX_SOCKETS_PER_SESSION on this session, or
          VOICE_WS_MAX_SOCKETS on this web process; try again later
    4400  the session id in the path is malformed
    4401  no visitor: the request carried no valid visitor cookie (get one from any API call)
    4404  no such session, or another visitor's (also any WebSocket path other than the
          transcript one)
    4410  the session has already ended
"""

NORMAL_CLOSURE = 1000
BINARY_FRAME = 1003  # RFC 6455 "unsupported data"
INVALID_UTF8 = 1007  # "invalid frame payload data"; sent by the server, listed for clients
TOO_MANY_FRAMES = 1008  # "policy violation"
FRAME_TOO_LARGE = 1009  # "message too big"
PING_TIMEOUT = 1011  # sent by the server when keepalive pings go unanswered
SERVICE_RESTART = 1012  # "service restart"
TOO_MANY_SOCKETS = 1013  # "try again later"
MALFORMED_ID = 4400
NO_VISITOR = 4401
UNKNOWN_SESSION = 4404
SESSION_ENDED = 4410
