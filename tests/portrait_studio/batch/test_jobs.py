"""Job files: formats, defaults, key names, per-row validation, path containment (no rendering)."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from portrait_studio import cli
from portrait_studio.batch import JobFileError, load_jobs
from portrait_studio.batch.options_table import canonical_key, specs
from portrait_studio.options import MofaOptions, RenderOptions


@pytest.fixture
def inputs(tmp_path, portrait_path, speech_path):
    """A job-file folder with a portrait and a speech file; an empty output folder beside it."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(portrait_path, folder / "face.png")
    shutil.copy(speech_path, folder / "talk.wav")
    (folder / "words.txt").write_text("hello there\n")
    return folder, tmp_path / "out"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_yaml_defaults_and_keys(inputs):
    folder, out = inputs
    jobs_file = write(folder / "jobs.yaml", """
defaults: {image: face.png, engine: warp, size: 256}
jobs:
  - {audio: talk.wav, output: a.mp4, head-motion: 0.5, steps: 4}
  - {audio: talk.wav, output: sub/b.mp4, size: 320, transcript: words.txt, cpu_offload: yes}
""")
    a, b = load_jobs(jobs_file, out)
    assert (a.row, b.row) == (1, 2)
    assert a.image == (folder / "face.png").resolve() and a.audio == (folder / "talk.wav").resolve()
    assert a.output == out.resolve() / "a.mp4" and b.output == out.resolve() / "sub" / "b.mp4"
    assert a.options.engine == "warp" and a.options.size == 256 and a.options.head_motion == 0.5
    assert a.options.mofa.steps == 4  # a MOFA option is a job key by its own long name
    assert b.options.size == 320 and b.options.transcript == "hello there" and b.options.mofa.cpu_offload is True


def test_csv_and_jsonl_convert_strings(inputs):
    folder, out = inputs
    csv_file = write(folder / "jobs.csv", "image,audio,output,fps,seed,engine,expressiveness\n"
                                          "face.png,talk.wav,one.mp4,30,7,warp,\n")
    (job,) = load_jobs(csv_file, out)
    assert job.options.fps == 30.0 and job.options.seed == 7 and job.options.engine == "warp"
    assert job.options.expressiveness == 1.0  # an empty cell keeps the default
    jsonl = write(folder / "jobs.jsonl", json.dumps({"image": "face.png", "audio": "talk.wav", "output": "x.mkv",
                                                     "relative_to": "neutral"}) + "\n\n")
    (job,) = load_jobs(jsonl, out)
    assert job.options.relative_to == "neutral" and job.output.suffix == ".mkv"


def test_every_option_is_a_job_key():
    names = {f.name for f in dataclasses.fields(RenderOptions) if f.name != "mofa"}
    names |= {f.name for f in dataclasses.fields(MofaOptions)}
    assert set(specs()) == names
    assert canonical_key("head-motion") == "head_motion" and canonical_key("--steps") == "steps"
    flagged = [s for s in specs().values() if s.flag != "--" + s.name.replace("_", "-")]
    assert all(canonical_key(s.flag) == s.name for s in flagged)  # e.g. --mofa-mode names `mode`


def test_every_problem_is_reported_with_its_row(inputs):
    folder, out = inputs
    jobs_file = write(folder / "jobs.yaml", """
- {image: face.png, audio: talk.wav, output: ok.mp4}
- {image: face.png, audio: talk.wav, output: bad1.mp4, fps: 1000}
- {image: face.png, audio: missing.wav, output: bad2.mp4}
- {image: face.png, audio: talk.wav, output: ok2.mp4, colour: red}
- {image: face.png, output: bad4.mp4}
- {image: face.png, audio: talk.wav, output: ok.mp4}
- {image: face.png, audio: talk.wav, output: bad6.gif}
- just a string
""")
    with pytest.raises(JobFileError) as info:
        load_jobs(jobs_file, out)
    rows = [row for row, _ in info.value.problems]
    assert rows == [2, 3, 4, 5, 6, 7, 8]
    text = str(info.value)
    for fragment in ("row 2: --fps", "row 3: audio file not found", "row 4: unknown key 'colour'",
                     "row 5: nothing drives", "row 6: output 'ok.mp4' is also written by row 1",
                     "row 7: output 'bad6.gif' must end with", "row 8: a job must be a mapping"):
        assert fragment in text
    assert "\n" not in text


@pytest.mark.parametrize("name, allowed", [
    ("/tmp/elsewhere.mp4", False), ("../up.mp4", False), ("sub/../../up.mp4", False),
    ("link/escaped.mp4", False), ("inside/fine.mp4", True), (".portrait-batch/x.mp4", False),
])
def test_outputs_stay_inside_out(inputs, tmp_path, name, allowed):
    folder, out = inputs
    out.mkdir()
    (tmp_path / "outside").mkdir()
    (out / "link").symlink_to(tmp_path / "outside")
    jobs_file = write(folder / "jobs.yaml", f"- {{image: face.png, audio: talk.wav, output: '{name}'}}\n")
    if allowed:
        assert load_jobs(jobs_file, out)[0].output.is_relative_to(out.resolve())
        return
    with pytest.raises(JobFileError, match="leaves --out|own .portrait-batch"):
        load_jobs(jobs_file, out)
    if not name.startswith(".portrait"):
        (job,) = load_jobs(jobs_file, out, allow_outside=True)
        assert not job.output.is_relative_to(out.resolve())


def test_side_outputs_are_contained_and_inputs_never_outputs(inputs):
    folder, out = inputs
    jobs_file = write(folder / "jobs.yaml", "- {image: face.png, audio: talk.wav, output: a.mp4, "
                                            "save_landmarks: ../track.npz}\n")
    with pytest.raises(JobFileError, match="save_landmarks '../track.npz' leaves --out"):
        load_jobs(jobs_file, out)
    jobs_file = write(folder / "jobs.yaml", "- {image: face.png, audio: talk.wav, output: a.mp4, debug_dir: dbg}\n"
                                            "- {image: face.png, audio: talk.wav, output: b.mp4, debug_dir: dbg}\n")
    with pytest.raises(JobFileError, match="row 2: side output 'landmarks.mp4' is also written by row 1"):
        load_jobs(jobs_file, out)
    shutil.copy(folder / "talk.wav", folder / "talk.mp4")
    jobs_file = write(folder / "jobs.yaml", f"- {{image: face.png, audio: talk.mp4, output: {folder / 'talk.mp4'}}}\n")
    with pytest.raises(JobFileError, match="is one of the job's inputs"):
        load_jobs(jobs_file, out, allow_outside=True)


def test_yaml_aliases_and_bad_documents(inputs):
    folder, out = inputs
    bomb = write(folder / "bomb.yaml", "- &a {image: face.png}\n- *a\n")
    with pytest.raises(JobFileError, match="aliases"):
        load_jobs(bomb, out)
    for text, pattern in (("{jobs: 3}", "expected a list"), ("[", "not valid YAML"), ("[]", "no jobs"),
                          ("{foo: []}", "defaults")):
        with pytest.raises(JobFileError, match=pattern):
            load_jobs(write(folder / "j.yaml", text), out)
    with pytest.raises(JobFileError, match=r"row 2: not valid JSON"):
        load_jobs(write(folder / "j.jsonl", '{"image": "face.png"}\n{oops\n'), out)


def test_cli_invalid_job_file_exits_2_with_one_line(inputs, capsys):
    folder, out = inputs
    jobs_file = write(folder / "jobs.yaml", "- {image: face.png, audio: talk.wav, output: ../x.mp4}\n"
                                            "- {image: face.png, audio: talk.wav, output: y.mp4, size: huge}\n")
    code = cli.main(["batch", str(jobs_file), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: job file jobs.yaml is invalid (2 problems): row 1:")
    assert "row 2: --size takes int, got 'huge'" in lines[0]
    assert not out.exists()  # nothing was created


def test_cli_dry_run_lists_jobs(inputs, capsys):
    folder, out = inputs
    jobs_file = write(folder / "jobs.yaml", "- {image: face.png, audio: talk.wav, output: a.mp4, engine: warp}\n")
    assert cli.main(["batch", str(jobs_file), "--out", str(out), "--dry-run"]) == 0
    stdout = capsys.readouterr().out
    assert "run  row    1  a.mp4  [warp]" in stdout and "1 to run, 0 up to date" in stdout
    assert not out.exists()


def test_example_job_file_is_valid(tmp_path):
    example = Path(__file__).resolve().parents[3] / "examples" / "jobs.yaml"
    jobs = load_jobs(example, tmp_path / "out")
    assert len(jobs) >= 3 and all(j.image.name == "portrait.png" for j in jobs)
