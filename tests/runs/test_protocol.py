"""The worker link's protocol (`runs/_protocol.py`): every message survives the wire, and a line that is no
message of its direction is an error that is logged, never dropped silently (nor with its content logged)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from autobots.runs._channel import Event
from autobots.runs._protocol import (
    Cancel,
    Changed,
    Close,
    Discard,
    EventsSoFar,
    Follow,
    Hello,
    Kick,
    NewEvent,
    Open,
    ProtocolError,
    Ready,
    Released,
    Reply,
    Secrets,
    Settled,
    Stop,
    Stopped,
    decode_hello,
    decode_to_pool,
    decode_to_worker,
    encode,
    receive,
)

EVENT = Event(seq=7, type="message", data={"source": "coder", "content": "é ✓", "usage": None}, created_at=1700000000)
TO_WORKER = [Kick(session_id="ses_1", user_id="usr_1", number=3), Follow(run_id="run_1"),
             Cancel(request_id=2, run_id="run_1", session_id="ses_1"),
             Secrets(workflow_id="wf_1", keys={"default": {"api_key": "sk-1"}}), Secrets(workflow_id="wf_1", keys=None),
             Stop()]
TO_POOL = [NewEvent(run_id="run_1", event=EVENT), EventsSoFar(run_id="run_1", events=[EVENT, EVENT]),
           Open(run_id="run_1"), Close(run_id="run_1"), Discard(run_id="run_1"), Settled(run_id="run_1"),
           Changed(session_id="ses_1"), Released(session_id="ses_1", last_kick=3), Reply(request_id=2),
           Reply(request_id=2, error_code="run_owned_elsewhere", error_message="cancel it there"), Ready(), Stopped()]


class TestEncodeDecode:
    @pytest.mark.parametrize("message", TO_WORKER, ids=lambda m: type(m).__name__)
    def test_a_message_to_a_worker_is_one_line_that_decodes_to_itself(self, message: Any) -> None:
        line = encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode_to_worker(line) == message

    @pytest.mark.parametrize("message", TO_POOL, ids=lambda m: type(m).__name__)
    def test_a_message_to_the_pool_is_one_line_that_decodes_to_itself(self, message: Any) -> None:
        line = encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode_to_pool(line) == message

    def test_hello_decodes_to_itself(self) -> None:
        hello = Hello(index=1, count=2, settings={"port": 8081}, secrets={"wf_1": {"default": {"api_key": "sk-1"}}},
                      max_concurrent=32)
        assert decode_hello(encode(hello)) == hello

    @pytest.mark.parametrize(("decode", "line", "error"), [
        (decode_to_worker, b'{"op": "launch", "run_id": "run_1"}\n', "unexpected op 'launch'"),
        (decode_to_worker, encode(Settled(run_id="run_1")), "unexpected op 'settled'"),
        (decode_to_pool, encode(Kick(session_id="ses_1", user_id="usr_1", number=1)), "unexpected op 'kick'"),
        (decode_to_pool, encode(Hello(index=0, count=1, settings={}, secrets={}, max_concurrent=1)),
         "unexpected op 'hello'"),
        (decode_hello, encode(Stop()), "unexpected op 'stop'"),
        (decode_to_worker, b'{"run_id": "run_1"}\n', "a line without an op"),
        (decode_to_worker, b'["kick"]\n', "a line without an op"),
        (decode_to_worker, b"kick ses_1\n", "a line that is not JSON"),
        (decode_to_worker, b'{"op": "kick", "session_id": "ses_1"}\n', "a malformed 'kick' message"),
        (decode_to_worker, b'{"op": "follow", "run_id": "run_1", "urgent": true}\n', "a malformed 'follow' message"),
        (decode_to_pool, b'{"op": "event", "run_id": "run_1", "seq": 1}\n', "a malformed 'event' message"),
    ])
    def test_a_line_that_is_no_message_of_its_direction_is_refused(self, decode: Callable[[bytes], Any],
                                                                    line: bytes, error: str) -> None:
        with pytest.raises(ProtocolError, match=error):
            decode(line)

    def test_a_refusal_names_no_value(self) -> None:
        with pytest.raises(ProtocolError) as refused:
            decode_to_worker(b'{"op": "secrets", "workflow_id": "wf_1", "keys": {"m": {"api_key": "sk-9"}}, "x": 1}\n')
        assert "sk-9" not in str(refused.value)


class TestReceive:
    async def test_a_line_that_is_no_message_is_logged_and_the_next_one_read(
            self, caplog: pytest.LogCaptureFixture) -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(encode(Follow(run_id="run_1")) + b'{"op": "stopped"}\n' + encode(Stop()))
        reader.feed_eof()
        with caplog.at_level(logging.ERROR, logger="autobots.runs.workers"):
            received = [message async for message in receive(reader, decode_to_worker, peer="the API process")]
        assert received == [Follow(run_id="run_1"), Stop()]
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.ERROR, "the API process sent unexpected op 'stopped'; skipped")]
