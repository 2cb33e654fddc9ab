"""The package as users get it: the sdist and the wheel build, twine accepts them,
and the wheel installed alone (no test extras) runs an application that includes
the add-on."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import requests

from okta_pyramid import __version__

from .issuer import LoopbackIssuer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the tracked files, so the build leaves nothing in the tree.
    source = tmp_path_factory.mktemp("source")
    tracked = run("git", "ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, source)
    return out


def test_the_sdist_and_the_wheel_build_and_pass_twine(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())
    assert built == [
        f"okta_pyramid-{__version__}-py3-none-any.whl",
        f"okta_pyramid-{__version__}.tar.gz",
    ]
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir())


def test_the_wheel_alone_runs_an_app_that_includes_the_addon(
    dist: Path, tmp_path: Path, issuer: LoopbackIssuer
) -> None:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    run(python, "-m", "pip", "install", "--quiet", wheel)
    # Only what the wheel brought: no pytest, no WebTest, and the package is the
    # installed one, with its type information (py.typed) and its console files.
    check = (
        "import importlib.util as u, okta_pyramid, pathlib; "
        "assert u.find_spec('pytest') is None and u.find_spec('webtest') is None; "
        "p = pathlib.Path(okta_pyramid.__file__).parent; "
        "assert 'site-packages' in str(p), p; "
        "assert (p / 'py.typed').exists() and (p / 'console' / 'index.html').exists(); "
        "print(okta_pyramid.__version__)"
    )
    assert run(python, "-c", check, cwd=tmp_path).strip() == __version__
    app = tmp_path / "tiny_app.py"
    shutil.copy(Path(__file__).with_name("tiny_app.py"), app)
    with subprocess.Popen(
        [python, app, issuer.issuer, issuer.audience],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None and server.stderr is not None
            url = server.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), server.stderr.read()
            assert requests.get(url + "/catalogue", timeout=10).json() == {"root": "Shop"}
            assert requests.get(url + "/basket", timeout=10).status_code == 401
            token = {"Authorization": "Bearer " + issuer.mint()}
            answer = requests.get(url + "/basket", headers=token, timeout=10)
            assert answer.json() == {"buyer": "alice@example.com"}
        finally:
            server.terminate()
