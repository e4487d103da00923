"""The layer contracts in .importlinter hold (import-linter, run as `lint-imports`).

Data flows one way: webapp > export > pipeline > tracker | classifier > common; the product
never imports the test kit, benchmarks or tools.  The second test shows the check
bites: the same contracts on a copy of the tree with one upward import fail, and so does deploy
importing the app.
"""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("common", "webapp", "export", "pipeline", "tracker", "classifier", "testkit", "benchmarks", "tools", "deploy")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_layer_contracts_are_kept():
    r = lint(REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def _copy_code(dst):
    """The product's packages and the contracts, without model files, into ``dst``."""
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("*.onnx", "*.tflite", "results"))
    shutil.copy(REPO / ".importlinter", dst)


def test_an_upward_import_breaks_the_contract(tmp_path):
    _copy_code(tmp_path)
    (tmp_path / "tracker" / "upward.py").write_text("from pipeline.results import FrameResult\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "tracker.upward -> pipeline.results" in r.stdout


def test_deploy_importing_the_app_breaks_the_contract(tmp_path):
    _copy_code(tmp_path)
    (tmp_path / "deploy" / "peek.py").write_text("import webapp.settings\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "deploy (python -m deploy)" in r.stdout and "deploy.peek -> webapp.settings" in r.stdout


def test_a_back_end_importing_the_factory_breaks_the_contract(tmp_path):
    """tracker/ has no import cycle: only tracker.factory names every back end."""
    _copy_code(tmp_path)
    (tmp_path / "tracker" / "detect.py").write_text(
        (REPO / "tracker" / "detect.py").read_text() + "\nfrom .factory import make_detector  # noqa\n")
    r = lint(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "tracker.detect -> tracker.factory" in r.stdout
