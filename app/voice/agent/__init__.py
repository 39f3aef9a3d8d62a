"""The agent side: one AgentSession per room (runner), where it runs (host, worker),
its providers, the LiveKit gateway, and the bridge from its events to the socket."""
