"""tracking.new_event_id: uuid4-shaped, unique, and different in forked children."""

from __future__ import annotations

import os
import uuid

from django_pageviews.tracking import new_event_id


def test_an_event_id_is_a_version_4_uuid_in_hex() -> None:
    event_id = new_event_id()
    parsed = uuid.UUID(event_id)
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert parsed.hex == event_id


def test_event_ids_do_not_repeat() -> None:
    ids = {new_event_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_forked_children_draw_different_ids() -> None:
    """Two workers forked from one parent must not share ids: a replayed id is dropped."""
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: write its ids and leave without cleanup
            os.close(read)
            os.write(write, " ".join(new_event_id() for _ in range(100)).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            children.append(set(pipe.read().split()))
        os.waitpid(pid, 0)
    parent = {new_event_id() for _ in range(100)}
    assert len(children[0]) == len(children[1]) == 100
    assert not children[0] & children[1]
    assert not (children[0] | children[1]) & parent
