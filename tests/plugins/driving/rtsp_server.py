"""Loopback RTSP test server, run by the tests with Debian's /usr/bin/python3
(PyGObject + gst-rtsp-server do not install into the project's venv).

Serves SMPTE colour bars, 320x240 at 15 fps, H.264 (x264enc from
gstreamer1.0-plugins-ugly; Motion JPEG when that is missing) at
rtsp://127.0.0.1:PORT/test. Bounded: exits by itself after --seconds.
``--check`` exits 0 when everything needed is importable, else 1 with the
reason on stderr.
"""
import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, default=8554)
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args()
    try:
        import gi
        gi.require_version('Gst', '1.0')
        gi.require_version('GstRtspServer', '1.0')
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f'cannot import GStreamer RTSP server bindings: {exc}',
              file=sys.stderr)
        return 1
    Gst.init(None)
    if Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find(
            'rtph264pay'):
        encode = ('x264enc tune=zerolatency speed-preset=ultrafast '
                  'key-int-max=15 ! rtph264pay name=pay0 pt=96 '
                  'config-interval=1')
    elif Gst.ElementFactory.find('jpegenc'):
        encode = 'jpegenc ! rtpjpegpay name=pay0 pt=26'
    else:
        print('no encoder: install gstreamer1.0-plugins-ugly (x264enc) or '
              'gstreamer1.0-plugins-good (jpegenc)', file=sys.stderr)
        return 1
    if args.check:
        return 0
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        '( videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,'
        f'height=240,framerate=15/1 ! videoconvert ! {encode} )')
    factory.set_shared(True)
    server.get_mount_points().add_factory('/test', factory)
    if server.attach(None) == 0:
        print(f'cannot listen on 127.0.0.1:{args.port}', file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.timeout_add(int(args.seconds * 1000), loop.quit)
    print('ready', flush=True)
    loop.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
