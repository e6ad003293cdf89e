"""The package as a user or the Docker image installs it: built (sdist, then a wheel from the
sdist), installed into an empty venv away from the checkout, then `flowmail selfcheck` renders
every email type in every locale and decodes every schema example from the installed files."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from core.catalogue import CATALOGUE
from processors.locales import SUPPORTED

ROOT = Path(__file__).resolve().parents[2]


def run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_from_sdist_installs_and_works_away_from_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    assert sdist.stat().st_size > 0
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("FLOWMAIL_", "PYTHON", "VIRTUAL_ENV"))}
    where = run([str(python), "-c", "import flowmail, templates, schemas; "
                 "print(flowmail.__file__, templates.__path__[0], schemas.__path__[0])"],
                cwd=elsewhere, env=clean_env)
    assert str(ROOT) not in where.stdout and str(env_dir) in where.stdout
    check = run([str(env_dir / "bin" / "flowmail"), "selfcheck"], cwd=elsewhere, env=clean_env)
    lines = check.stdout.splitlines()
    types, locales = len(CATALOGUE), len(SUPPORTED)  # one email type per catalogue event
    assert sum(line.startswith("rendered ") for line in lines) == types * locales
    assert sum(line.startswith("decoded ") for line in lines) == types
    assert "invoice-" in check.stdout and ".pdf" in check.stdout
    assert lines[-1] == f"selfcheck passed: {types * locales + types} checks"
    assert not (elsewhere / ".flowmail").exists()  # nothing written where it ran
    # the fake provider APIs ship too (the benchmark and the compose file use them); the
    # benchmark without its extra says which extra to install
    run([str(python), "-c", "import flowmail.fakes.sendgrid, flowmail.fakes.mailgun"],
        cwd=elsewhere, env=clean_env)
    bench = subprocess.run([str(env_dir / "bin" / "flowmail"), "bench", "--n", "8"],
                           cwd=elsewhere, env=clean_env, capture_output=True, text=True,
                           timeout=120)
    assert bench.returncode != 0 and "flowmail[bench]" in bench.stderr
    assert "Traceback" not in bench.stderr
