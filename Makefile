# perception: `make demo` (installs into .venv, then runs the main job) and
# `make test`. Everything installs from PyPI / Debian; nothing else is fetched.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := driving,medical,deploy,dev
export PERCEPTION_STRICT_PLUGINS ?= 1

.PHONY: install demo test test-slow test-deps lint clean

install: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade 'pip>=23.1' setuptools wheel
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	# One OpenCV: an older install (or a stray package) may hold mmengine and
	# opencv-python, which share files with mmengine-lite and
	# opencv-python-headless; remove them, then restore the shared files.
	$(BIN)/python -m pip uninstall -y -q mmengine opencv-python \
	    opencv-contrib-python opencv-contrib-python-headless 2>&1 | grep -v 'not installed' || true
	$(BIN)/python -m pip install -q --force-reinstall --no-deps \
	    'mmengine-lite>=0.10.7,<0.11' 'opencv-python-headless>=4.8'
	touch $(STAMP)

# The whole pipeline on generated data, on CPU (see README): driving and
# medical parts, report in work_dirs/demo/report.html.
demo: install
	$(BIN)/perception demo all

# ruff: lint and import order (settings in pyproject.toml).
lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# System packages some tests use (RTSP server on loopback, headless Chromium
# for the demo report); tests skip with
# the reason when they are missing.
test-deps:
	apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly \
	    gstreamer1.0-plugins-good gstreamer1.0-plugins-base ffmpeg \
	    chromium-headless-shell

clean:
	rm -rf $(VENV) work_dirs *.egg-info
