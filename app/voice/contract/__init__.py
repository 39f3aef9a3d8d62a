"""What crosses the wire, defined once: WebSocket messages, the error body, close codes,
and the rules that clients must follow (names, paging, health statuses).

Plain Python with no Django import, so the Flask UI renders the same rules into its pages.
"""
