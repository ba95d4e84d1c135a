"""Policy decisions over plain values, with an injected clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from policies import (
    AuditRecord,
    Forbidden,
    MemoryAuditSink,
    Policy,
    PolicyConfig,
    PolicyDenied,
    PolicyFileError,
    Principal,
    Quota,
    RateLimited,
    RotatingFileAuditSink,
    SqliteQuotaStore,
    TextOverLimit,
    Unauthorized,
    load_policy,
    token_hash,
)
from policies.config import BlockedPattern, ContentRules
from policies.errors import StateUnavailable
from policies.limits import Limits
from policies.quota_store import Charge, MemoryQuotaStore
from policies.redaction import redact

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy_with(*principals: Principal, clock: Clock | None = None, **content: object) -> Policy:
    config = PolicyConfig(
        local_principal=principals[0].id, principals=principals, content=ContentRules(**content)
    )
    return Policy(config, clock=clock or Clock())


def test_a_token_maps_to_its_principal_and_anything_else_is_unauthorized():
    alice = Principal(id="alice", token_sha256=(token_hash("alice-secret"),))
    policy = policy_with(alice)
    assert policy.authenticate("alice-secret").id == "alice"
    for token in (None, "", "alice-secret ", "bob-secret"):
        with pytest.raises(Unauthorized):
            policy.authenticate(token)


def test_tools_and_voices_are_limited_per_principal():
    kid = Principal(id="kid", tools=("speak",), voices=("en_US-joe-medium",))
    policy = policy_with(kid)
    policy.check_speak(kid, "Hello.", "en_US-joe-medium")
    with pytest.raises(Forbidden, match="voice"):
        policy.check_speak(kid, "Hello.", "other-voice")
    with pytest.raises(Forbidden, match="transcribe"):
        policy.check_transcribe(kid)


def test_text_over_the_principal_limit_is_text_too_long_with_the_limit():
    short = Principal(id="short", max_text_chars=10)
    with pytest.raises(TextOverLimit) as info:
        policy_with(short).check_speak(short, "x" * 11, "v")
    assert info.value.code == "text_too_long" and info.value.limit == 10


def test_the_rate_limit_refuses_the_call_past_it_until_the_minute_turns():
    clock = Clock(1_000_020.0)
    busy = Principal(id="busy", rate_per_minute=3)
    other = Principal(id="other", rate_per_minute=3)
    policy = policy_with(busy, other, clock=clock)
    for _ in range(3):
        policy.check_list_voices(busy)
    with pytest.raises(RateLimited) as info:
        policy.check_list_voices(busy)
    retry_after_ms = info.value.retry_after_ms
    assert retry_after_ms is not None
    assert info.value.retryable and 0 < retry_after_ms <= 60_000 and info.value.rule == "calls_per_minute"
    policy.check_list_voices(other)  # another principal is unaffected
    clock.now += retry_after_ms / 1000
    policy.check_list_voices(busy)


def test_character_and_audio_quotas_are_counted_per_window():
    clock = Clock()
    capped = Principal(id="capped", quota=Quota(chars_per_hour=20, audio_seconds_per_day=10))
    policy = policy_with(capped, clock=clock)
    policy.check_speak(capped, "x" * 15, "v")
    with pytest.raises(RateLimited, match="chars per hour"):
        policy.check_speak(capped, "x" * 6, "v")
    policy.record_audio(capped, 10.5)
    with pytest.raises(RateLimited, match="audio seconds per day"):
        policy.check_transcribe(capped)
    clock.now += 3600
    with pytest.raises(RateLimited, match="audio seconds per day"):
        policy.check_speak(capped, "x", "v")


class FlakyStore(MemoryQuotaStore):
    """The in-process counters behind a connection that can be cut (a Redis restart, a partition)."""

    down = False

    def add(self, principal: str, counter: str, window_start: int, amount: float) -> None:
        if self.down:
            raise StateUnavailable("the quota store cannot be reached")
        super().add(principal, counter, window_start, amount)

    def charge(self, principal: str, charges: Sequence[Charge]) -> Charge | None:
        if self.down:
            raise StateUnavailable("the quota store cannot be reached")
        return super().charge(principal, charges)


def test_audio_used_while_the_store_is_down_is_counted_once_it_answers():
    store, clock = FlakyStore(), Clock()
    capped = Principal(id="capped", quota=Quota(audio_seconds_per_hour=10))
    config = PolicyConfig(local_principal="capped", principals=(capped,))
    policy = Policy(config, store=store, clock=clock)
    policy.check_transcribe(capped)
    store.down = True
    policy.record_audio(capped, 6.0)  # the call was served: its use is held, not raised
    policy.record_audio(capped, 5.0)
    assert policy.limits.held == 2
    with pytest.raises(StateUnavailable):  # nothing is admitted unchecked meanwhile
        policy.check_transcribe(capped)
    store.down = False
    with pytest.raises(RateLimited, match="audio seconds per hour"):  # 11 s held, now counted
        policy.check_transcribe(capped)
    assert (
        policy.limits.held == 0
        and store.used("capped", "audio_seconds_per_hour", 1_000_000 // 3600 * 3600) == 11
    )


def test_held_use_beyond_its_bound_is_dropped_oldest_first_and_counted_as_lost():
    store = FlakyStore()
    capped = Principal(id="capped", quota=Quota(audio_seconds_per_hour=100))
    limits = Limits(store, Clock(), max_held=3)
    store.down = True
    for seconds in (1.0, 2.0, 3.0, 4.0, 5.0):
        limits.record_audio(capped, seconds)
    store.down = False
    limits.write_held()
    assert (limits.held, limits.lost) == (0, 2)
    assert store.used("capped", "audio_seconds_per_hour", 1_000_000 // 3600 * 3600) == 3 + 4 + 5


def test_text_arriving_in_pieces_counts_one_call_and_every_character():
    streamer = Principal(id="streamer", rate_per_minute=1, max_text_chars=25, quota=Quota(chars_per_hour=100))
    policy = policy_with(streamer)
    policy.check_speak(streamer, "First sentence.", "v")
    policy.check_speak(streamer, "Second.", "v", spoken_chars=15)  # more of the same call: no rate
    with pytest.raises(TextOverLimit, match="26 characters"):
        policy.check_speak(streamer, "Third.", "v", spoken_chars=20)  # the cap holds for the whole
    with pytest.raises(RateLimited, match="calls per minute"):
        policy.check_speak(streamer, "A new call.", "v")
    with pytest.raises(PolicyDenied):
        policy_with(streamer, blocked_patterns=[BlockedPattern(id="no-pin", pattern="PIN")]).check_speak(
            streamer, "Say the PIN.", "v", spoken_chars=5
        )


def test_quota_state_in_sqlite_survives_a_new_store(tmp_path):
    clock = Clock()
    capped = Principal(id="capped", quota=Quota(chars_per_day=10))
    first = Policy(
        PolicyConfig(local_principal="capped", principals=(capped,)),
        SqliteQuotaStore(tmp_path / "q.db"),
        clock=clock,
    )
    first.check_speak(capped, "x" * 10, "v")
    second = Policy(
        PolicyConfig(local_principal="capped", principals=(capped,)),
        SqliteQuotaStore(tmp_path / "q.db"),
        clock=clock,
    )
    with pytest.raises(RateLimited):
        second.check_speak(capped, "y", "v")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Hello\x07there", "plain-text"),
        ("Bad \ud800 surrogate", "plain-text"),
        ("Say it in the voice of Morgan Freeman please", "impersonation"),
        ("Please impersonate Taylor Swift for me", "impersonation"),
        ("my secret code is 4242", "no-secret"),
    ],
)
def test_content_rules_refuse_with_the_rule_id(text, rule):
    someone = Principal(id="someone")
    policy = policy_with(someone, blocked_patterns=(BlockedPattern(id="no-secret", pattern=r"secret code"),))
    with pytest.raises(PolicyDenied) as info:
        policy.check_speak(someone, text, "v")
    assert info.value.rule == rule and info.value.code == "policy_denied"


def test_ordinary_text_passes_the_content_rules():
    someone = Principal(id="someone")
    policy_with(someone).check_speak(someone, "It sounds like rain.\nI will imitate nothing today.", "v")


def test_pii_is_redacted_emails_phones_and_luhn_valid_cards():
    text = "Mail bob.smith@example.com or call 555-123-4567; card 4111 1111 1111 1111, order 1234567890123."
    assert redact(text) == "Mail [email] or call [phone]; card [card], order 1234567890123."


def test_redaction_applies_only_to_principals_whose_policy_says_so():
    private = Principal(id="private", redact_pii=True)
    plain = Principal(id="plain")
    policy = policy_with(private, plain)
    assert policy.redact_text(private, "mail a@b.co") == "mail [email]"
    assert policy.redact_text(plain, "mail a@b.co") == "mail a@b.co"
    assert (
        policy.redact_word(private, "555-1234") == "[redacted]"
        and policy.redact_word(private, "hello") == "hello"
    )


def test_the_example_policies_are_valid_and_their_tokens_work():
    assert load_policy(EXAMPLES / "local.yaml").local_principal == "me"
    tenants = Policy(load_policy(EXAMPLES / "multi-tenant.yaml"))
    assert tenants.authenticate("support-team-token").redact_pii
    assert tenants.authenticate("kids-app-token").tools == ("speak", "list_voices")


@pytest.mark.parametrize(
    ("yaml_text", "line", "fragment"),
    [
        ("version: 1\nprincipals:\n  - id: a\n    tools: [speak, fly]\n", 4, "tools"),
        ("version: 1\nprincipals:\n  - id: a\n    token_sha256: [abc]\n", 4, "64"),
        ("version: 1\nprincipals:\n  - id: a\n    rate_per_minute: 0\n", 4, "rate_per_minute"),
        ("version: 1\nsurprise: true\n", 2, "surprise"),
        (
            "version: 1\ncontent:\n  blocked_patterns:\n    - id: x\n      pattern: '('\n",
            5,
            "regular expression",
        ),
        ("version: 1\nprincipals: [\n", 3, "YAML"),
    ],
)
def test_an_invalid_policy_file_names_the_file_line_and_problem(tmp_path, yaml_text, line, fragment):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PolicyFileError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:{line}:") and fragment in str(info.value)


def test_audit_lines_are_json_without_content(tmp_path):
    sink = RotatingFileAuditSink(tmp_path / "audit.log", max_bytes=2048, backups=2)
    for i in range(40):
        sink.write(
            AuditRecord(request_id=f"r{i}", principal="alice", tool="speak", decision="allow", chars=12)
        )
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    import json

    line = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert line["principal"] == "alice" and line["decision"] == "allow" and "time" in line


def test_a_reload_puts_the_new_policy_in_force():
    policy = policy_with(Principal(id="a", tools=("speak",)))
    with pytest.raises(Forbidden):
        policy.check_list_voices(policy.local())
    policy.reload(PolicyConfig(local_principal="a", principals=(Principal(id="a"),)))
    policy.check_list_voices(policy.local())


def test_the_memory_sink_keeps_records():
    sink = MemoryAuditSink()
    Policy(audit=sink).audit(AuditRecord(request_id="1", principal="p", tool="t", decision="deny"))
    assert sink.records[0].decision == "deny"
