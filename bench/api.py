"""`python -m bench api`: request throughput of GET /token and POST+DELETE /session against
the running backend (one uvicorn worker, as `dev.sh run` starts it), bounded in count."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench import common
from bench.live import real_stack


async def _load(http: httpx.AsyncClient, count: int, concurrency: int, request: Any) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            t = time.monotonic()
            try:
                status = await request(http, i)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.monotonic() - t)
            if status not in (200, 201, 204):
                errors[str(status)] = errors.get(str(status), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {
        "requests": count,
        "concurrency": concurrency,
        "seconds": elapsed,
        "rps": count / elapsed,
        "latency": common.summary(latencies),
        "errors": errors,
    }


async def _token(http: httpx.AsyncClient, i: int) -> int:
    return (await http.get("/token", params={"room": f"r{i}", "identity": f"u{i}"})).status_code


async def _session(http: httpx.AsyncClient, i: int) -> int | str:
    r = await http.post("/session", json={"room": f"api-room-{i}", "identity": f"api-user-{i}"})
    if r.status_code != 201:
        return r.status_code
    d = await http.delete(f"/session/{r.json()['session_id']}")
    return d.status_code if d.status_code != 204 else 201


# What is loaded, at which concurrencies, how many times (quick, full), counted as what.
LOADS = (
    ("token", "GET /token", (1, 16), (100, 1000), _token, "req/s"),
    ("session", "POST+DELETE /session", (1, 4), (4, 30), _session, "pairs/s"),
)


async def _run(backend: str, origin: str, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=backend, timeout=60, headers={"Origin": origin}) as http:
        await _token(http, -1)
        for key, label, concurrencies, counts, request, unit in LOADS:
            for conc in concurrencies:
                r = out[f"{key}_c{conc}"] = await _load(http, counts[0] if quick else counts[1], conc, request)
                print(
                    f"  {label:<21} c={conc:<2} {r['rps']:7.1f} {unit:<7}  p50 {common.fmt(r['latency']['p50'])}"
                    f" p99 {common.fmt(r['latency']['p99'])}  errors={r['errors']}",
                    flush=True,
                )
    return out


def main(quick: bool, out: str) -> dict[str, Any]:
    print("== API throughput (one uvicorn worker, real LiveKit; a session start joins the agent to its room)")
    with real_stack("zero") as stack:
        result = asyncio.run(_run(stack.backend_url, stack.ui_url, quick))
    common.write_result(out, {"kind": "api", "results": result})
    return result
