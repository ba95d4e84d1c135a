"""The playground's routes: the page and its files (public, locked down by their headers), the
status and eval report it reads (guarded), and socket tickets — how a browser opens a WebSocket as
a principal without a header and without a token in the URL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from agent_tools.core.errors import Busy
from agent_tools.core.runtime import Runtime
from agent_tools.core.socket_tickets import MemorySocketTickets
from agent_tools.settings import Settings
from policies import Unauthorized, token_hash
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.web.test_sockets import closed_with, receive, ws_url

POLICY = (
    "version: 1\nlocal_principal: a\naudit:\n  path: audit.log\nprincipals:\n"
    f"  - id: a\n    token_sha256: [{token_hash('a-token')}]\n    tools: [speak, transcribe, list_voices]\n"
    f"  - id: b\n    token_sha256: [{token_hash('b-token')}]\n    tools: [speak]\n"
)
A = {"authorization": "Bearer a-token"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def guarded(settings: Settings, tmp_path: Path) -> Runtime:
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"eval_report": tmp_path / "report.html"})}
    )
    runtime, _ = fake_runtime(settings, policy)
    return runtime


async def test_the_page_and_its_modules_are_served_without_a_token_and_locked_down(guarded):
    async with serve_http(guarded) as base, httpx2.AsyncClient(base_url=base) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<script type="module" src="/page/playground.js">' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        for module in (
            "playground.js",
            "api.js",
            "speak.js",
            "listen.js",
            "capture-worklet.js",
            "playground.css",
        ):
            served = await http.get(f"/page/{module}")
            assert served.status_code == 200, module
            assert served.headers["x-content-type-options"] == "nosniff"
        assert (await http.get("/page/%2e%2e/settings.py")).status_code == 404  # no way out of the folder
        assert (await http.get("/page/nothing.js")).status_code == 404
        assert (await http.get("/v1/status")).status_code == 401  # the data behind the page is guarded


async def test_status_says_readiness_and_the_live_figures(guarded):
    async with serve_http(guarded) as base, httpx2.AsyncClient(base_url=base, headers=A) as http:
        status = (await http.get("/v1/status")).json()
    assert status["ready"] is True and status["in_flight"] == 0 and status["live_streams"] == 0
    assert (
        set(status["queued"])
        == set(status["running"])
        == {
            "synthesis",
            "recognition",
            "short_recognition",
            "voice_activity",
            "sentences",
        }
    )
    limits = status["limits"]  # core's bounds, for the page's controls
    assert limits["speed"] == {"min": 0.5, "max": 2.0, "default": 1.0}
    assert limits["sample_rate"] == {"min": 8000, "max": 48000}
    assert limits["text"]["max_chars"] == guarded.settings.service.max_text_chars


async def test_status_polls_are_not_audited_but_tickets_and_refusals_are(guarded, tmp_path):
    async with serve_http(guarded) as base, httpx2.AsyncClient(base_url=base) as http:
        for _ in range(3):
            assert (await http.get("/v1/status", headers=A)).status_code == 200
        assert (await http.get("/v1/status")).status_code == 401
        assert (await http.post("/v1/socket-tickets", headers=A)).status_code == 200
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(line["tool"], line["decision"]) for line in lines] == [
        ("status", "deny"),
        ("socket_ticket", "allow"),
    ]
    assert not any(issued in (tmp_path / "audit.log").read_text() for issued in ("ticket.", "a-token"))


async def test_the_eval_report_is_not_found_until_one_is_written(guarded):
    report = guarded.settings.server.eval_report
    async with serve_http(guarded) as base, httpx2.AsyncClient(base_url=base, headers=A) as http:
        missing = await http.get("/v1/eval/report")
        assert missing.status_code == 404
        assert (
            missing.json()["error"]["code"] == "not_found"
            and "make eval" in missing.json()["error"]["message"]
        )
        report.write_text("<html><body><h1>Eval report</h1></body></html>")
        found = await http.get("/v1/eval/report")
    assert found.status_code == 200 and "<h1>Eval report</h1>" in found.text
    assert found.headers["content-security-policy"] == "script-src 'none'"


async def test_a_socket_ticket_opens_one_socket_as_its_principal_once(guarded):
    async with serve_http(guarded) as base, httpx2.AsyncClient(base_url=base) as http:
        assert (await http.post("/v1/socket-tickets")).status_code == 401  # a ticket needs the token
        issued = (await http.post("/v1/socket-tickets", headers=A)).json()
        assert issued["subprotocols"] == ["speech-tools", f"ticket.{issued['ticket']}"]
        assert issued["expires_in_seconds"] == 30
        url = ws_url(base, "/v1/transcribe/ws")
        offered = [Subprotocol(p) for p in issued["subprotocols"]]
        async with connect(ws_url(base, "/v1/speak/ws"), subprotocols=offered) as ws:
            assert ws.subprotocol == "speech-tools"  # never the ticket echoed back
            first = await receive(ws)
            assert first["type"] == "ready", first
        async with connect(url, subprotocols=offered) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("unauthorized", 4401) and "used or expired" in error["message"]
        b_ticket = (await http.post("/v1/socket-tickets", headers={"authorization": "Bearer b-token"})).json()
        async with connect(url, subprotocols=[Subprotocol(p) for p in b_ticket["subprotocols"]]) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("forbidden", 4403)  # the ticket is b's, and b may not transcribe
        made_up = [Subprotocol("speech-tools"), Subprotocol("ticket.made-up")]
        async with connect(url, subprotocols=made_up) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("unauthorized", 4401)


def test_tickets_expire_a_flooding_principal_drops_only_its_own_and_a_full_store_says_busy():
    now = [0.0]
    tickets = MemorySocketTickets(ttl_seconds=30, per_principal=2, max_outstanding=4, clock=lambda: now[0])
    first, second = tickets.issue("a"), tickets.issue("b")
    now[0] = 29.0
    assert tickets.redeem(second) == "b"
    third = tickets.issue("c")
    now[0] = 31.0
    with pytest.raises(Unauthorized):
        tickets.redeem(first)  # expired
    theirs = tickets.issue("b")
    flood = [tickets.issue("a") for _ in range(50)]
    assert tickets.redeem(theirs) == "b" and tickets.redeem(third) == "c"  # others' tickets kept
    assert tickets.redeem(flood[-1]) == "a"
    with pytest.raises(Unauthorized):
        tickets.redeem(flood[0])  # a's own oldest went
    tickets.issue("d"), tickets.issue("d"), tickets.issue("e")
    with pytest.raises(Busy) as full:
        tickets.issue("f")
    assert full.value.code == "busy" and full.value.retry_after_ms


async def test_socket_tickets_count_against_the_rate_and_a_flood_cannot_evict_another_principals(
    settings, tmp_path
):
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("    tools: [speak]\n", "    tools: [speak]\n    rate_per_minute: 6\n"))
    runtime, _ = fake_runtime(settings, policy)
    b = {"authorization": "Bearer b-token"}
    async with serve_http(runtime) as base, httpx2.AsyncClient(base_url=base) as http:
        kept = (await http.post("/v1/socket-tickets", headers=b)).json()
        statuses = [(await http.post("/v1/socket-tickets", headers=b)).status_code for _ in range(11)]
        limited = await http.post("/v1/socket-tickets", headers=b)
        flood = [(await http.post("/v1/socket-tickets", headers=A)).json() for _ in range(10_001 // 250)]
        url = ws_url(base, "/v1/speak/ws")
        async with connect(url, subprotocols=[Subprotocol(p) for p in kept["subprotocols"]]) as ws:
            theirs = await receive(ws)
        async with connect(url, subprotocols=[Subprotocol(p) for p in flood[0]["subprotocols"]]) as ws:
            evicted = await receive(ws)
    assert statuses == [200] * 5 + [429] * 6  # b's rate is 6 a minute, tickets included
    assert limited.json()["error"]["code"] == "rate_limited" and "retry-after" in limited.headers
    assert theirs["type"] == "ready"  # a's flood left b's ticket alone
    assert evicted["code"] == "unauthorized"  # a's own oldest went
