"""The quarantine warnings of a sync, summarised over time (`pipeline.notices`)."""

from __future__ import annotations

import logging

import pytest

from coffeeshop.pipeline.notices import QuarantineNotice


def test_quarantine_warnings_come_at_most_once_per_interval_then_the_total(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = logging.getLogger("coffeeshop.test.notices")
    notice = QuarantineNotice(log, every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger=log.name):
        notice.add(1, 0)  # nothing quarantined: nothing said
        assert caplog.messages == []
        notice.add(2, 3)  # the first: at once
        for batch in range(3, 13):  # ten more batches within 10 s: summed up
            now[0] += 0.5
            notice.add(batch, 2)
        assert len(caplog.messages) == 1 and caplog.messages[0].startswith(
            "batch 2: 3 event(s) quarantined (see `coffeeshop quarantine`)"
        )
        now[0] += 5.0  # 10 s after the first line
        notice.add(13, 1)
        assert caplog.messages[1] == (
            "21 more event(s) quarantined in 11 batch(es) over the last 10 s "
            "(see `coffeeshop quarantine`)"
        )
        now[0] += 1
        notice.add(14, 4)
        notice.finish()
    assert caplog.messages[2:] == [
        "28 event(s) quarantined in all by this run (see `coffeeshop quarantine`)"
    ]
    assert notice.total == 28


def test_one_quarantining_batch_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("coffeeshop.test.notices")
    notice = QuarantineNotice(log, clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger=log.name):
        notice.add(7, 2)
        notice.finish()
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith("batch 7: 2 event(s)")
