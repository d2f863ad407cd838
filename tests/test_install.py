"""The package as users get it from ``pip install .``: built into a wheel, installed non-editable outside the source
tree, run from a directory outside it. The presets must come with the package (package data), so that the installed
``mindsponge-fold`` finds ``base.yaml``.

Cheap on purpose (seconds): the wheel is built without build isolation and installed with ``--no-deps`` into a
``--target`` directory that the test venv's Python runs with, reusing the venv's installed dependencies (MindSpore
is not downloaded again).
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from code_graph import REPO

PROBE = """
import json, sys
import mindsponge_fold
from mindsponge_fold.common.config import CONFIG_DIR, available_presets, load_config
from mindsponge_fold.model import native
cfg = load_config("tiny", ["model.num_recycle=2"])
print(json.dumps({"native_source": native.SOURCE.is_file(),
                  "package": mindsponge_fold.__file__, "config_dir": str(CONFIG_DIR), "presets": available_presets(),
                  "name": cfg.name, "num_recycle": cfg.model.num_recycle, "path": sys.path}))
"""


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site directory, environment) of a non-editable install of a wheel built from a copy of the sources."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "mindsponge_fold", src / "mindsponge_fold",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(root / "dist"), str(src)])
    wheel, = (root / "dist").glob("mindsponge_fold-*.whl")
    site = root / "site"
    _run(pip + ["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run_dir = root / "elsewhere"
    run_dir.mkdir()
    return wheel, site, env, run_dir


def test_wheel_carries_the_presets(installed):
    wheel, *_ = installed
    names = zipfile.ZipFile(wheel).namelist()
    presets = {n.rsplit("/", 1)[-1] for n in names if n.startswith("mindsponge_fold/config/")}
    assert {"base.yaml", "model_1_ptm.yaml", "tiny.yaml", "train_initial.yaml"} <= presets
    assert "mindsponge_fold/common/residue_geometry.json" in names
    assert "mindsponge_fold/model/native_kernels.cc" in names          # built on first use (model/native.py)
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


def test_installed_package_loads_a_config_outside_the_source_tree(installed):
    _, site, env, run_dir = installed
    out = json.loads(_run([sys.executable, "-c", PROBE], env=env, cwd=run_dir).stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(site)), out["package"]            # the installed copy, not the sources
    assert out["config_dir"] == str(site / "mindsponge_fold" / "config")
    assert {"model_1_ptm", "tiny", "train_initial"} <= set(out["presets"])
    assert out["name"] == "tiny" and out["num_recycle"] == 2
    assert out["native_source"]
    assert str(REPO) not in out["path"] and "" not in out["path"][1:]


def test_installed_command_runs(installed):
    _, site, env, run_dir = installed
    script = site / "bin" / "mindsponge-fold"
    proc = _run([str(script), "predict", "--help"], env=env, cwd=run_dir)
    assert "--output-dir" in proc.stdout and "--config NAME|YAML, --preset NAME|YAML" in proc.stdout
    proc = subprocess.run([str(script), "params-table", "--config", "no_such_preset"], env=env, cwd=run_dir,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown config preset 'no_such_preset'" in proc.stderr
    assert "available: " in proc.stderr and "model_1_ptm" in proc.stderr
