"""How much of an input, and of a receipt, is kept: quarantine keeps a bad input's raw text and
its reason capped (a prefix, with the input's length and SHA-256), and a receipt whose items
would not fit one statement on every supported server is quarantined rather than stored.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib

from coffeeshop.core.receipt_codec import encode_lines
from coffeeshop.core.receipts import Receipt

# Quarantine keeps at most this many characters of an input's raw text (a prefix), with the
# input's full length and SHA-256 in the reason: a statement holding it then stays far below
# MySQL's max_allowed_packet, and a listing of the quarantine stays small.
RAW_KEEP = 65_536
# A reason longer than this (one that quotes a huge value) is cut: MySQL's TEXT holds 64 KiB.
MAX_REASON = 2_000
# A receipt's items as stored (`[[name, quantity], …]` in compact JSON) may take at most this
# many bytes; a receipt over it is quarantined. Its row then fits one statement on every
# supported server (MySQL/MariaDB need max_allowed_packet ≥ 4 MiB: hex doubles the bytes).
MAX_STORED_ITEMS = 1 << 20
# Below this many distinct products a receipt cannot reach MAX_STORED_ITEMS (a name is at
# most 100 characters: ≤ 600 bytes of JSON), so its size is not even computed.
_ITEMS_ALWAYS_FIT = 1_000


def cut_note(length: int, digest: str) -> str:
    """What a reason says when the raw text kept with it is only a prefix of the input."""
    return (
        f" [raw input cut to its first {RAW_KEEP:,} characters: the input is {length:,} bytes, "
        f"sha256 {digest}]"
    )


def cap_reason(reason: str) -> str:
    if len(reason) <= MAX_REASON + 256:  # room for a `cut_note`: capping twice changes nothing
        return reason
    return f"{reason[:MAX_REASON]}… [cut from {len(reason):,} characters]"


def cap_raw(raw: str, reason: str) -> tuple[str, str]:
    """(raw, reason) to keep in quarantine: a raw text over `RAW_KEEP` characters keeps its
    prefix, and the reason gains the full length and the SHA-256 of its UTF-8 bytes."""
    reason = cap_reason(reason)
    if len(raw) <= RAW_KEEP:
        return raw, reason
    data = raw.encode("utf-8", "surrogatepass")
    return raw[:RAW_KEEP], reason + cut_note(len(data), hashlib.sha256(data).hexdigest())


def stored_items_problem(receipt: Receipt) -> str | None:
    """Why a valid receipt is too large to store, or None (almost always, at no cost)."""
    if len(receipt.items) < _ITEMS_ALWAYS_FIT:
        return None
    size = len(encode_lines(receipt.items).encode("utf-8", "surrogatepass"))
    if size <= MAX_STORED_ITEMS:
        return None
    return (
        f"items: {len(receipt.items)} distinct products take {size} bytes stored, more than the "
        f"{MAX_STORED_ITEMS} one receipt may hold"
    )
