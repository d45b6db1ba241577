"""The wheel built from a clean clone carries the front end, and serves it from package data."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from exosuit.processes import free_port

REPO = Path(__file__).parents[2]
VENDORED = (
    "web/static/vendor/htmx.min.js",
    "web/static/vendor/sse.min.js",
    "web/static/vendor/swagger-ui-bundle.js",
    "web/static/vendor/swagger-ui.css",
    "web/static/vendor/swagger-ui.LICENSE.txt",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps` of a `git clone` of this repository (what it commits, nothing else)."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(where / "clone")], check=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(where / "out")]
    subprocess.run([*pip, str(where / "clone")], check=True)
    (built,) = (where / "out").glob("exosuit-*.whl")
    return built


def test_the_wheel_from_a_clean_clone_carries_htmx_its_sse_extension_and_swagger_ui(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in VENDORED if name not in names]
    assert not missing, f"not in the wheel: {missing}"


async def test_the_installed_wheel_serves_docs_and_the_ui_from_its_own_files(
    wheel: Path, tmp_path: Path, temporal_env: WorkflowEnvironment
) -> None:
    fresh = tmp_path / "venv"
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True
    )
    python = fresh / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    await asyncio.to_thread(subprocess.run, [*install, str(wheel)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(fresh), "platbase": str(fresh)})["purelib"])
    # The dependencies come from this venv's site-packages as a plain path: its .pth files
    # (this checkout's editable install among them) are not read, so Exosuit is the wheel's.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    port = free_port()
    env = os.environ | {
        "EXOSUIT_DATA_DIR": str(tmp_path / "var"),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
    }
    process = await asyncio.create_subprocess_exec(
        str(fresh / "bin" / "exosuit"), "web", "--port", str(port),
        env=env, cwd=tmp_path, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(600):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            docs = await http.get("/docs")
            assert docs.status_code == 200
            assert "http://" not in docs.text and "https://" not in docs.text  # no CDN: served here
            for path in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/htmx.min.js", "/login"):
                assert (await http.get(path)).status_code == 200, path
            served = await http.get("/static/vendor/sse.min.js")
            assert served.content == (site / "web/static/vendor/sse.min.js").read_bytes()
    finally:
        process.terminate()
        await process.wait()
