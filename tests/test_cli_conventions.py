"""``python -m export`` keeps the conventions of a command line: a bad option is a usage error (exit 2)
before any work, ``--help`` shows the defaults, a non-video reads "not a video", a log gets plain
progress lines, one speed figure, and the same sentence as the app for the same mistake."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from classifier.spec import DEFAULT_MODEL, builtin_specs
from pipeline.messages import MESSAGES, message
from testkit.assets import feat_data

REPO = Path(__file__).resolve().parents[1]


def _never(*a, **k):
    raise AssertionError("no file may be processed after a usage error")


@pytest.mark.parametrize("flags,says", [
    (["--model", "no-such-model"], f"unknown model 'no-such-model'; choose one of: {', '.join(sorted(builtin_specs()))}"),
    (["--preset", "far"], "unknown preset 'far'; presets are: standard, steady"),
    (["--detector", "medium"], "detection.detector must be one of 'auto', 'blazeface', 'short', 'full'"),
])
def test_a_bad_option_is_a_usage_error_before_any_work(tmp_path, monkeypatch, capsys, flags, says):
    import export.__main__ as cli

    monkeypatch.setattr(cli, "process_video", _never)
    shutil.copy(feat_data() / "single_face.mp4", tmp_path / "a.mp4")
    with pytest.raises(SystemExit) as e:
        cli.main([str(tmp_path / "a.mp4"), "--out", str(tmp_path / "out"), *flags])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # no empty output folder left behind


def test_an_output_folder_that_cannot_be_made_is_a_usage_error(tmp_path, monkeypatch, capsys):
    import export.__main__ as cli

    monkeypatch.setattr(cli, "process_video", _never)
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as e:
        cli.main([str(tmp_path / "a.mp4"), "--out", str(tmp_path / "file" / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot create the folder (Not a directory)" in err and "Error:" not in err


def test_help_shows_the_defaults_and_no_markup():
    import export.__main__ as cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "export", "--help"], capture_output=True, text=True, env=env).stdout
    flat = " ".join(out.split())
    assert "(default: the preset's, auto)" in flat and "(default: standard)" in flat
    assert f"(default: the preset's, {DEFAULT_MODEL})" in flat
    assert "standard: every face" in flat and "Standard: Standard" not in flat and "standard: Standard" not in flat
    dep = subprocess.run([sys.executable, "-m", "deploy", "--help"], capture_output=True, text=True, env=env,
                         cwd=REPO).stdout
    assert "``" not in dep and "python -m deploy USER/SPACE" in dep


def test_from_another_folder_with_defaults_not_videos_and_a_log(tmp_path):
    """A real run from outside the clone (PYTHONPATH, as the README says), stderr to a file: the text
    file and the JPEG are "not a video", the video is analysed with ``--detector auto`` (the default,
    accepted when named), progress comes as plain lines, and the speed is given once."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(feat_data() / "single_face.mp4", work / "clip.mp4")
    shutil.copy(feat_data() / "single_face.jpg", work / "photo.jpg")
    (work / "notes.txt").write_text("Meeting notes\n" * 200)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(tmp_path / "stderr.log", "w") as log:
        p = subprocess.run([sys.executable, "-m", "export", "notes.txt", "photo.jpg", "clip.mp4", "--out", "out",
                            "--detector", "auto", "--jobs", "1"], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=log, text=True, timeout=600)
    err = (tmp_path / "stderr.log").read_text()
    assert p.returncode == 1, err  # two of three files are not videos
    assert "error: " + message("text_not_video", name="notes.txt") in err
    assert "error: " + message("image_not_video", name="photo.jpg", kind="JPEG") in err
    assert "2 of 3 files failed" in err and "Traceback" not in err
    assert "\r" not in err  # no terminal bar in a log
    progress = [l for l in err.splitlines() if l.startswith("clip.mp4: ") and "% (" in l]
    assert 3 <= len(progress) <= 11 and progress[-1].startswith("clip.mp4: 100% ("), progress
    assert "frames/s" not in err and p.stdout.count("frames/s") == 1  # one speed figure: the summary line
    assert (work / "out" / "clip_timeline.csv").is_file()


def test_the_same_mistake_reads_the_same_in_the_app_and_the_command_line(tmp_path):
    from pipeline.video import VideoError, VideoReader
    from webapp.media import Media, UserInputError

    media = Media(output_dir=tmp_path / "out")
    analyze_image_file, process_video_file = media.analyze_image_file, media.process_video_file

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError) as cli_side:
        VideoReader(empty)
    with pytest.raises(UserInputError) as app_side:
        process_video_file(str(empty), tmp_path / "out")
    assert str(cli_side.value) == str(app_side.value) == message("empty", name="empty.mp4")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserInputError) as img_side:
        analyze_image_file(str(tmp_path / "empty.jpg"))
    assert str(img_side.value) == message("empty", name="empty.jpg")
    with pytest.raises(UserInputError) as model_side:
        analyze_image_file(str(feat_data() / "single_face.jpg"), model="no-such-model")
    assert str(model_side.value) == message("unknown_model", name="no-such-model",
                                            choices=sorted(builtin_specs()))
    assert all(k.islower() for k in MESSAGES)


def test_the_api_docs_list_the_messages_of_the_table():
    """docs/API.md's list of errors is the shared table, filled with sample values."""
    doc = (REPO / "docs" / "API.md").read_text()
    sample = {"name": "clip.mp4", "why": "Invalid data found when processing input", "kind": "JPEG",
              "choices": ["fer-mini-xception", "ferplus-8"]}
    for key in MESSAGES:
        if key == "folder":  # the command line's own: an upload is never a folder
            continue
        fields = dict(sample)
        if key.startswith("unknown_"):
            fields["name"] = "x"
            if key == "unknown_preset":
                fields["choices"] = ["standard", "steady"]
        assert f"`{message(key, **fields)}`" in doc, key
