"""Every package of the library ships in the wheel (setup.cfg lists them by name)."""

import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_library_package_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "keras_tl").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
