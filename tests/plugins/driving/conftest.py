"""Driving-plugin test fixtures: the writers live in driving_fixtures.py
and the loopback servers in driving_servers.py, so test modules can import
them too (pytest runs with --import-mode=importlib, where conftest.py is not
importable by name)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from driving_fixtures import small_video  # noqa: E402,F401
from driving_servers import mjpeg_server, rtsp_server, rtsp_server_process  # noqa: E402,F401
