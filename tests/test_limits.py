"""`core.limits`: what quarantine keeps of a large input (a receipt too large to store:
`test_packet_limit.py`)."""

from __future__ import annotations

import hashlib

from coffeeshop.core.limits import (
    MAX_REASON,
    RAW_KEEP,
    cap_raw,
    cap_reason,
)


def test_a_raw_text_over_the_limit_keeps_its_prefix_and_names_the_whole() -> None:
    raw = "é" * (RAW_KEEP + 10)
    kept, reason = cap_raw(raw, "not JSON")
    data = raw.encode("utf-8")
    assert kept == raw[:RAW_KEEP]
    assert reason.startswith("not JSON [raw input cut to its first 65,536 characters")
    assert f"the input is {len(data):,} bytes" in reason
    assert hashlib.sha256(data).hexdigest() in reason


def test_a_raw_text_within_the_limit_and_a_short_reason_stay_as_they_are() -> None:
    raw = "x" * RAW_KEEP
    assert cap_raw(raw, "bad") == (raw, "bad")


def test_a_long_reason_is_cut_once_and_capping_again_changes_nothing() -> None:
    reason = "y" * (MAX_REASON * 3)
    capped = cap_reason(reason)
    assert capped.startswith("y" * MAX_REASON)
    assert capped.endswith(f"[cut from {len(reason):,} characters]")
    assert cap_reason(capped) == capped
    kept, again = cap_raw("z" * (RAW_KEEP + 1), capped)
    assert cap_raw(kept, again) == (kept, again)
