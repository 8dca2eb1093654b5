"""FrameSlot: newest frame wins, overwritten frames are counted, one frame held at most."""

import threading

from yolact_ros.ros.frame_slot import FrameSlot


def test_newest_frame_wins_and_drops_are_counted():
    slot = FrameSlot()
    for i in range(5):
        slot.put(i)
    assert slot.pending == 1
    assert slot.take(timeout=0) == (4, 4)
    assert slot.pending == 0
    slot.put(5)
    assert slot.take(timeout=0) == (5, 0)  # drops are reported once
    assert (slot.received, slot.dropped) == (6, 4)


def test_take_times_out_empty_and_close_wakes_waiters():
    slot = FrameSlot()
    assert slot.take(timeout=0.01) is None
    results = []
    waiter = threading.Thread(target=lambda: results.append(slot.take()))
    waiter.start()
    slot.close()
    waiter.join()
    assert results == [None]


def test_close_counts_a_pending_frame_as_dropped():
    slot = FrameSlot()
    slot.put('a')
    slot.close()
    assert slot.take(timeout=0) is None
    assert (slot.received, slot.dropped, slot.pending) == (1, 1, 0)
    slot.reopen()
    slot.put('b')
    assert slot.take(timeout=0) == ('b', 0)


def test_concurrent_producer_accounting_is_exact():
    slot = FrameSlot()
    taken = []
    done = threading.Event()

    def consume():
        while not done.is_set() or slot.pending:
            item = slot.take(timeout=0.01)
            if item is not None:
                taken.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(2000):
        slot.put(i)
        assert slot.pending <= 1
    done.set()
    consumer.join()
    frames = [frame for frame, _ in taken]
    assert frames == sorted(frames) and frames[-1] == 1999  # in order, newest served last
    assert len(frames) + sum(dropped for _, dropped in taken) == 2000
    assert slot.dropped == 2000 - len(frames)
