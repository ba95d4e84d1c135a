"""The one guard: every route and socket in the app's own route table refuses a foreign Host or Origin."""

from __future__ import annotations

import re

import httpx2
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent_tools.web.app import build_app
from agent_tools.web.guard import ANY_HOST
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.web.test_sockets import ws_url

pytestmark = pytest.mark.anyio
FOREIGN = "evil.example"


def route_table(runtime) -> tuple[list[tuple[str, str]], list[str]]:
    """(method, path) of every HTTP route, and the path of every socket, with path parameters filled."""
    http, sockets = [], []
    for route in build_app(runtime).routes:
        path = re.sub(r"\{[^}]+\}", "x", getattr(route, "path", ""))
        if isinstance(route, WebSocketRoute):
            sockets.append(path)
        elif isinstance(route, Route):
            http.append((sorted(route.methods or {"GET"})[0], path))
        elif isinstance(route, Mount):
            http.append(("POST", path + "/"))
    return http, sockets


async def test_every_route_and_socket_refuses_a_foreign_host_and_origin(runtime):
    http_routes, sockets = route_table(runtime)
    assert len(http_routes) >= 10 and sorted(sockets) == ["/v1/realtime", "/v1/speak/ws", "/v1/transcribe/ws"]
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        for method, path in http_routes:
            host = await http.request(method, base + path, headers={"host": FOREIGN})
            origin = await http.request(method, base + path, headers={"origin": f"http://{FOREIGN}"})
            if path not in ANY_HOST:
                assert host.status_code == 421 and host.json()["error"]["code"] == "forbidden", path
            assert origin.status_code == 403 and origin.json()["error"]["code"] == "forbidden", path
        port = int(base.rsplit(":", 1)[1])
        for path in sockets:
            foreign_host = connect(f"ws://{FOREIGN}:{port}{path}", host="127.0.0.1", port=port)  # Host: evil
            foreign_origin = connect(ws_url(base, path), origin=f"http://{FOREIGN}")  # type: ignore[arg-type]
            for attempt in (foreign_host, foreign_origin):
                with pytest.raises(InvalidStatus) as refused:
                    async with attempt:
                        pass
                assert refused.value.response.status_code == 403, path


async def test_probes_and_the_metrics_scrape_answer_a_pod_ip_host_but_not_a_browser_page(runtime):
    pod = {"host": "10.42.0.17:8000"}  # how a kubelet or Prometheus addresses a front-end
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        answered = {path: await http.get(base + path, headers=pod) for path in ANY_HOST}
        from_a_page = await http.get(f"{base}/metrics", headers={**pod, "origin": "http://10.42.0.17:8000"})
        posted = await http.post(f"{base}/readyz", headers=pod)
        beside = await http.get(f"{base}/v1/status", headers=pod)
    assert {path: r.status_code for path, r in answered.items()} == dict.fromkeys(ANY_HOST, 200)
    assert "speech_" in answered["/metrics"].text
    assert from_a_page.status_code == 403
    assert posted.status_code == 421 and beside.status_code == 421  # only reading a probe passes


async def test_cors_answers_loopback_pages_and_refuses_other_origins(runtime):
    page = "http://localhost:5173"
    preflight = {
        "origin": page,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        allowed = await http.options(f"{base}/v1/audio/speech", headers=preflight)
        foreign = await http.options(
            f"{base}/v1/audio/speech", headers={**preflight, "origin": f"http://{FOREIGN}"}
        )
        listed = await http.get(f"{base}/v1/audio/voices", headers={"origin": page})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == page
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == page
