"""Masking credentials: the one place that decides what of a URL or a message may be shown.

Every database URL and MongoDB URI that reaches a log line, an error message, the CLI's
output or an API response goes through `mask_url` (a URL) or `mask_text` (free text that may
hold URLs, such as a driver's error). Credentials come in several forms, and each is masked:

* the password of the user info, `scheme://user:password@host` (`user:***@`), whether the
  string parses as a URL or not, and also without a scheme (`user:password@host/db`);
* query options that carry a secret, whatever the scheme: `?password=`, `?passwd=`, `?pwd=`,
  `sslpassword`, `tlsCertificateKeyFilePassword`, any option whose name holds `pass`, `pwd`,
  `secret` or `token`, and MongoDB's `authMechanismProperties` (which can carry an AWS
  session token).

The masking errs on the side of hiding: a user info is taken up to the *last* `@`, so a
password holding `@`, `/` or `?` unencoded is hidden whole (with whatever followed it).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Option names (lower case) whose values are secrets.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "authmechanismproperties", "credential")

# A URL-like token in free text: a scheme and `://`, up to whitespace or a closing quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# `user:password@host` without a scheme, in free text.
_USERINFO_IN_TEXT = re.compile(
    r"(?<![\w/:%.+-])(?P<user>[\w.%+-]+):(?P<password>[^\s@/:'\"]+)@(?=\S)"
)
# `name=value` pairs of secret options in free text (a driver's message, a DSN without `?`).
_OPTION_IN_TEXT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:pass|pwd|secret|token)[A-Za-z0-9_]*"
    r"|pass[A-Za-z0-9_]*|authMechanismProperties)(?P<eq>\s*=\s*)(?P<value>(?!\*\*\*(?:[\s&;,:'\"]|$))[^\s&;,'\"]+)",
    re.IGNORECASE,
)


def is_secret_option(name: str) -> bool:
    """True for a URL query option whose value is a credential."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_url(url: Any) -> str:
    """`url` (a string, or a SQLAlchemy `URL`) with every credential replaced by `***`.

    Strings that are not valid URLs are masked too: this is what error messages about a bad
    URL show."""
    if not isinstance(url, str):
        render = getattr(url, "render_as_string", None)
        url = render(hide_password=False) if render is not None else str(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, _password = userinfo.partition(":")
        userinfo = f"{user}:{MASK}" if colon else userinfo
        rest = f"{userinfo}@{rest}"
    head, question, query = rest.partition("?")
    # Without a `?`, a `password=…` may still be there (a libpq-style string): mask it too.
    rest = f"{head}?{_mask_query(query)}" if question else _OPTION_IN_TEXT.sub(_mask_option, rest)
    return f"{scheme}://{rest}" if sep else rest


def _mask_query(query: str) -> str:
    parts = re.split(r"([&;])", query)
    for n in range(0, len(parts), 2):
        name, eq, _value = parts[n].partition("=")
        if eq and is_secret_option(name):
            parts[n] = f"{name}={MASK}"
    return "".join(parts)


def _mask_option(match: re.Match[str]) -> str:
    return f"{match.group('name')}{match.group('eq')}{MASK}"


def mask_text(text: str, *secrets: str | None) -> str:
    """Free text (an error message, a log line) with every URL in it masked, every
    `password=…`-style option masked, and each of `secrets` (known credential values, such
    as the password of the URL in use) replaced wherever it appears."""
    text = _URL_IN_TEXT.sub(_mask_url_in_text, text)
    text = _USERINFO_IN_TEXT.sub(lambda m: f"{m.group('user')}:{MASK}@", text)
    text = _OPTION_IN_TEXT.sub(_mask_option, text)
    for secret in secrets:
        if secret and len(secret) >= 3:  # a one- or two-character "secret" would mask noise
            text = text.replace(secret, MASK)
    return text


def _mask_url_in_text(match: re.Match[str]) -> str:
    """A URL in a sentence: punctuation after it (`…/db: refused`) is not part of it."""
    found = match.group(0)
    url = found.rstrip(".,:;)]")
    return mask_url(url) + found[len(url) :]


def secrets_of(url: Any) -> tuple[str, ...]:
    """The credential values a URL carries (its password and secret options), to scrub from
    text that a driver wrote, where they may appear out of any URL form."""
    found: list[str] = []
    password = getattr(url, "password", None)
    if password:
        found.append(str(password))
    query = getattr(url, "query", None) or {}
    for name, value in query.items():
        if is_secret_option(name):
            values = value if isinstance(value, tuple) else (value,)
            found.extend(str(v) for v in values if v)
    return tuple(found)
