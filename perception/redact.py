"""Credentials never leave in what we print: one helper for every URL.

Camera URLs often carry a user and password (``rtsp://admin:pw@10.0.0.5/``)
or a token in the query (``?user=admin&pwd=...``). :func:`redact_url` hides
both in one URL; :func:`redact_text` in any text that may quote URLs
(messages of libraries such as FFmpeg). Sources keep the real URL only to
connect (``FrameSource.connect_uri``); everything they show (``uri``,
events, errors, stats, thread names) goes through here, and so do logs,
reports and pictures.
"""
from __future__ import annotations

import re

__all__ = ['redact_url', 'redact_text', 'SECRET_QUERY_KEYS']

#: query parameters whose values are secrets (case-insensitive, whole key)
SECRET_QUERY_KEYS = ('password', 'passwd', 'pass', 'pwd', 'pw', 'token', 'access_token',
                     'secret', 'key', 'apikey', 'api_key', 'auth', 'signature', 'sig')
_USERINFO = re.compile(r'(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]+)@')
_QUERY = re.compile(r'(?P<sep>[?&;])(?P<key>' + '|'.join(SECRET_QUERY_KEYS)
                    + r')=(?P<value>[^&#\s;\'"]*)', re.IGNORECASE)
_URL = re.compile(r'\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\'"<>]+')


def redact_url(url: str) -> str:
    """``url`` with its user/password and secret query values as ``***``:
    ``rtsp://user:pass@host/x?token=t`` -> ``rtsp://***@host/x?token=***``.
    Paths and anything without ``://`` come back unchanged."""
    text = str(url)
    if '://' not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text, count=1)
    return _QUERY.sub(lambda m: f"{m['sep']}{m['key']}=***", text)


def redact_text(text: str) -> str:
    """Every URL inside ``text`` passed through :func:`redact_url`."""
    text = str(text)
    if '://' not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group()), text)
