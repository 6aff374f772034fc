"""Driving-plugin test fixtures: everything lives in driving_fixtures.py so
test modules can import the writers too (pytest runs with
--import-mode=importlib, where conftest.py is not importable by name)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from driving_fixtures import (mjpeg_server, rtsp_server,  # noqa: E402,F401
                              rtsp_server_process, small_video)
