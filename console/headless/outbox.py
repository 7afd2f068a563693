"""The bounded outgoing queue between the publisher and the transport: back-pressure lives here.

Two kinds of message wait here:

* *state* (retained topics: device state and availability, site, jobs, discovery): keyed by
  topic, and a newer message for a topic replaces the one waiting (`coalesced` counts it).
  While the broker is away this is what keeps only the latest state per device, so a
  reconnect publishes the present, not a backlog.
* *events* (events, command replies): first in, first out; when the queue is full the oldest
  waiting event is dropped.

The total is bounded by `max_messages`; a new state topic arriving at a full queue is dropped
(`dropped` counts both kinds). The transport takes everything waiting in one go
(`take_all`), sends it in chunks, and gives back what it could not send (`restore`) when the
connection drops midway, unless a newer state for that topic arrived meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple


class Outgoing(NamedTuple):
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    correlation_data: bytes | None = None
    """MQTT v5 correlation data, for replies on a requester's response topic."""


class Outbox:
    def __init__(self, max_messages: int) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.max_messages = max_messages
        self._state: dict[str, Outgoing] = {}
        self._events: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self.coalesced = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._state) + len(self._events)

    def put_state(self, message: Outgoing) -> None:
        state = self._state
        if message.topic in state:
            state[message.topic] = message
            self.coalesced += 1
            return
        if len(state) + len(self._events) >= self.max_messages:
            self.dropped += 1
            return
        state[message.topic] = message
        self._ready.set()

    def put_event(self, message: Outgoing) -> None:
        if len(self._state) + len(self._events) >= self.max_messages:
            if not self._events:
                self.dropped += 1
                return
            self._events.popleft()
            self.dropped += 1
        self._events.append(message)
        self._ready.set()

    async def wait(self) -> None:
        """Return once something is waiting."""
        while not (self._state or self._events):
            self._ready.clear()
            await self._ready.wait()

    def take_all(self) -> list[Outgoing]:
        """Everything waiting, events first (replies are what someone is waiting for), then
        states in the order their topics first became pending."""
        taken = list(self._events)
        taken.extend(self._state.values())
        self._events.clear()
        self._state = {}
        return taken

    def restore(self, unsent: Iterable[Outgoing]) -> None:
        """Put back messages the transport could not send, ahead of newer arrivals; a state
        superseded meanwhile is dropped as coalesced."""
        events: list[Outgoing] = []
        state: dict[str, Outgoing] = {}
        for message in unsent:
            if not message.retain:
                events.append(message)
            elif message.topic in self._state:
                self.coalesced += 1
            else:
                state[message.topic] = message
        self._events.extendleft(reversed(events))
        state.update(self._state)
        self._state = state
        overflow = len(self._state) + len(self._events) - self.max_messages
        while overflow > 0 and self._events:
            self._events.popleft()
            self.dropped += 1
            overflow -= 1
        if overflow > 0:
            for topic in list(self._state)[-overflow:]:
                del self._state[topic]
            self.dropped += overflow
        if self._state or self._events:
            self._ready.set()
