"""Session state: the persisted created → running → ended machine, its domain errors,
and the sweeper for sessions whose host died. Knows nothing of agents or HTTP."""
