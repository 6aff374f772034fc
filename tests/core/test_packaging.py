"""setup.cfg declares every package and plugin the tree contains."""
from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    return cfg


def _listed(cfg, section, key) -> list[str]:
    return [line.strip() for line in cfg[section][key].splitlines()
            if line.strip()]


def test_every_plugin_folder_is_a_listed_package_and_entry_point():
    cfg = _setup_cfg()
    packages = set(_listed(cfg, 'options', 'packages'))
    package_dir = dict(line.split(' = ') for line in
                       _listed(cfg, 'options', 'package_dir'))
    entry_points = dict(line.split(' = ') for line in
                        _listed(cfg, 'options.entry_points',
                                'perception.plugins'))
    folders = sorted(p.parent for p in (ROOT / 'plugins').glob(
        '*/__init__.py'))
    assert folders, 'no plugin packages found under plugins/'
    for folder in folders:
        package = f'perception_{folder.name}'
        assert package in packages, f'{package} missing from packages'
        assert package_dir[package] == f'plugins/{folder.name}'
        assert entry_points[folder.name] == package
        for init in folder.rglob('__init__.py'):
            dotted = '.'.join((package, ) + init.parent.relative_to(
                folder).parts)
            assert dotted in packages, f'{dotted} missing from packages'


def test_every_core_package_is_listed():
    packages = set(_listed(_setup_cfg(), 'options', 'packages'))
    for init in (ROOT / 'perception').rglob('__init__.py'):
        dotted = '.'.join(init.parent.relative_to(ROOT).parts)
        assert dotted in packages, f'{dotted} missing from setup.cfg packages'


def test_distribution_name_differs_from_unrelated_pypi_package():
    cfg = _setup_cfg()
    assert cfg['metadata']['name'] != 'perception'
    assert cfg['metadata']['license'] == 'Apache-2.0'
    assert 'pylibjpeg-libjpeg' not in cfg['options.extras_require']['medical']
    assert 'pylibjpeg-libjpeg' in cfg['options.extras_require']['gpl']


def test_core_never_imports_a_plugin():
    offenders = []
    for path in (ROOT / 'perception').rglob('*.py'):
        text = path.read_text()
        for plugin in ('perception_mim', 'perception_driving',
                       'perception_medical'):
            if f'import {plugin}' in text or f'from {plugin}' in text:
                offenders.append(f'{path.relative_to(ROOT)} -> {plugin}')
    assert not offenders, offenders


#: distributions that each install the ``cv2`` package (over each other).
OPENCV_DISTS = ('opencv-python', 'opencv-python-headless',
                'opencv-contrib-python', 'opencv-contrib-python-headless')


def _installed(names) -> list[str]:
    from importlib import metadata
    found = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def test_exactly_one_opencv_distribution_is_installed():
    found = _installed(OPENCV_DISTS)
    assert found == ['opencv-python-headless'], (
        f'OpenCV distributions installed: {found}; expected only '
        'opencv-python-headless (run make install, which removes the others)')
    import cv2
    assert cv2.imread is not None


def test_mmengine_comes_from_mmengine_lite():
    requires = _listed(_setup_cfg(), 'options', 'install_requires')
    assert any(r.startswith('mmengine-lite') for r in requires)
    assert not any(r.split('>')[0].split('<')[0].split('=')[0] == 'mmengine'
                   for r in requires)
    assert _installed(('mmengine', 'mmengine-lite')) == ['mmengine-lite']
    import mmengine.runner  # noqa: F401
