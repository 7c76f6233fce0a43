"""The measures' definitions as users read them: `evaluate --help` prints this text, the README quotes it."""

MEASURES = """\
measures (all offline; landmarks from the bundled mediapipe face landmarker, 68 iBUG points per frame;
IOD = inter-ocular distance, outer eye corners 36-45):
  lipsync     mouth opening (mean inner-lip gap 61-67, 62-66, 63-65, over the IOD) against the audio's
              loudness (dB over each frame's on-screen interval [t, t + 1/fps), floored 50 dB below the
              loud level): the peak Pearson correlation `ncc` over lags within +-0.6 s, its lag
              `lag_frames` (> 0: the mouth follows the sound; real speakers peak at 0 or just below)
              and `lag_ms` (the peak refined by a parabola). Audio: --audio (starting with the video),
              else the video's own track (at its own start time).
  silence     `open_fraction`: share of the silent frames (30 dB under the loud level or below -60 dBFS,
              in stretches of >= 0.3 s, 0.1 s trimmed at each end) where the inner lips are more than
              0.05 IOD wider apart than the video's closed mouth (the 5th percentile of its opening).
  control     with --landmarks (a saved track) or --driving-video + --image (retargeted as `render`
              does): mean distance between asked and found landmarks over the asked frame's IOD
              (`nme`; `nme_mouth` 48-67, `nme_eyes` 36-47), over the frames both have.
  drift       per window of --window seconds (default 5) against the first: `color_de2000` (CIEDE2000
              between the windows' mean CIELAB colour of the face: inside jaw and brows, without eyes
              and lips) and `color_de2000_background` (outside face, hair and neck); `cpbd` (CPBD
              sharpness, Narvekar & Karam 2011, of 2 frames a second; `cpbd_relative` over the first
              window); with --image, `geometry`: landmark-shape distance to the portrait's after a
              similarity (Procrustes) alignment, points 0-47, in IOD.
  background  mean absolute RGB change (0-255) outside face, hair and neck (of frame 0 and the frames
              compared): frame to frame (`mad_mean`, `mad_max`) and against frame 0 (`mad_vs_first_*`).
  jitter      on the rigid points (brows, nose, eye corners), in median IOD: `accel_energy`, the mean
              squared second difference per frame, and `max_jump`, the largest frame-to-frame move.
  file        container, codecs, size, fps, frames, duration, audio duration and the A/V difference.
Frames larger than 640 px are downscaled before measuring."""
