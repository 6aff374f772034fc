"""perception.redact: credentials in URLs never appear in what is shown."""
import pytest

from perception.redact import redact_text, redact_url


@pytest.mark.parametrize('url, shown', [
    ('rtsp://user:pass@cam.local:554/stream1', 'rtsp://***@cam.local:554/stream1'),
    ('http://admin@10.0.0.5/video.mjpg', 'http://***@10.0.0.5/video.mjpg'),
    ('https://u:p%40ss@host/x?token=abc&fps=5', 'https://***@host/x?token=***&fps=5'),
    ('http://host/cgi?user=admin&pwd=s3cret', 'http://host/cgi?user=admin&pwd=***'),
    ('rtsp://cam.local/stream', 'rtsp://cam.local/stream'),
    ('/data/drive@2024/video.mp4', '/data/drive@2024/video.mp4'),
    ('rtsp://u:p@h/a@b', 'rtsp://***@h/a@b'),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_urls_inside_messages():
    text = ("cannot connect ('rtsp://user:pass@10.0.0.5/live': Connection refused) "
            'after http://a:b@h/x?key=k1')
    out = redact_text(text)
    assert 'pass' not in out and 'a:b' not in out and 'k1' not in out
    assert "'rtsp://***@10.0.0.5/live'" in out and 'http://***@h/x?key=***' in out
    assert redact_text('no url here') == 'no url here'
