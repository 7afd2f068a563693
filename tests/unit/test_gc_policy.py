"""The garbage-collector policy: readings are never tracked; the start-up heap is frozen once."""

from __future__ import annotations

import gc

from console.alloc import YOUNG_GC_THRESHOLD, freeze_startup_heap
from drivers.cgminer.client import Reply
from drivers.cgminer.dialects.base import Identity
from drivers.cgminer.reading import AsicReading, BoardReading, Firmware, PoolReading
from drivers.cgminer.status import Status


def test_readings_and_replies_are_not_tracked_by_the_cyclic_collector() -> None:
    reading = AsicReading(
        firmware=Firmware.ANTMINER_STOCK,
        make="Antminer",
        boards=(BoardReading(index=0, temp_chip_c=70.0),),
        pools=(PoolReading(index=0, url="stratum+tcp://pool:3333"),),
        warnings=("stats not available",),
    )
    reply = Reply("summary", {"SUMMARY": [{"Elapsed": 1}]}, Status("S", 11))
    identity = Identity(firmware=Firmware.BRAIINS, make="Antminer", details={"chips": {"0": 1}})
    for value in (reading, *reading.boards, *reading.pools, reply, reply.status, identity):
        assert not gc.is_tracked(value), type(value).__name__
    # The containers they hold are still tracked where they need to be (a dict can be mutated).
    assert gc.is_tracked(reply.data)


def test_the_start_up_heap_is_frozen_once_per_process() -> None:
    freeze_startup_heap()  # the first call in this test process, or a no-op after Site.run
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert freeze_startup_heap() is False  # a second site, or a second call: nothing more
    assert gc.get_freeze_count() == frozen
    # Young collections are rarer: what they find alive is the polls in flight either way.
    assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
