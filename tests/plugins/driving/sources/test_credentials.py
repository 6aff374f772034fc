"""Stream URLs with credentials never appear in what a source shows: its
``uri``, repr, events, stats, errors, timeouts, frame meta and thread names
(issue 20, item 8), with a loopback MJPEG server."""
import threading
import time

import pytest

from perception.sources import SourceError, SourceTimeout, open_source

SECRET = 's3cr3t-pw'
FAST = dict(backoff_s=0.02, backoff_max_s=0.2, read_timeout_s=0.5)


def with_credentials(url: str) -> str:
    scheme, rest = url.split('://', 1)
    return f'{scheme}://viewer:{SECRET}@{rest}'


def shown(source, frames=()) -> str:
    """Everything a source shows to logs, reports and pictures."""
    parts = [source.uri, repr(source), str(source.stats)]
    parts += [f'{e.kind} {e.detail}' for e in source.events]
    parts += [str(f.meta) for f in frames]
    parts += [t.name for t in threading.enumerate()]
    return '\n'.join(parts)


def take(source, n):
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def test_events_stats_and_frames_hide_the_password(mjpeg_server):
    server = mjpeg_server(fps=40)
    url = with_credentials(server.url)
    with open_source(url, buffering='fifo', timeout_s=10, **FAST) as source:
        frames = take(source, 5)
        server.stop()           # stall + reconnect events name the source
        time.sleep(0.6)
        server.start()
        frames += take(source, 5)
        text = shown(source, frames)
    assert len(frames) == 10
    assert {e.kind for e in source.events} >= {'stall', 'reconnect'}
    assert SECRET not in text and 'viewer' not in text
    assert 'http://***@127.0.0.1' in source.uri
    assert 'http://***@127.0.0.1' in next(e.detail for e in source.events
                                          if e.kind == 'reconnect')


def test_timeouts_and_errors_hide_the_password(mjpeg_server):
    server = mjpeg_server(fps=40)
    url = with_credentials(server.url)
    with open_source(url, timeout_s=1.0, **FAST) as source:
        take(source, 2)
        server.mute()
        with pytest.raises(SourceTimeout) as timeout:
            take(source, 10**6)
    assert SECRET not in str(timeout.value) and '***@' in str(timeout.value)
    server.stop()
    with open_source(url, max_reconnects=2, timeout_s=5, **FAST) as source:
        with pytest.raises((SourceError, SourceTimeout)) as error:
            take(source, 1)
        text = shown(source)
    assert SECRET not in str(error.value) and SECRET not in text
    with pytest.raises(ValueError) as bad:
        open_source(url, buffering='sometimes')
    assert SECRET not in str(bad.value)


def test_an_unknown_scheme_is_refused_without_the_password():
    with pytest.raises(SourceError) as info:
        open_source(f'rtps://viewer:{SECRET}@127.0.0.1:9/typo')
    assert SECRET not in str(info.value) and 'rtps://***@127.0.0.1:9/typo' in str(info.value)
