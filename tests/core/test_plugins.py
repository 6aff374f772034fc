"""Plugin discovery: in-tree plugins, an installed third-party template, a
broken plugin, duplicate names and the disable variable. Each case runs in a
fresh interpreter, since discovery happens once per process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / 'examples' / 'plugin_template'


def run_python(code: str, env_extra: dict | None = None,
               python: str = sys.executable, pythonpath: list[str] = ()
               ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PERCEPTION_')}
    env.update(env_extra or {})
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(pythonpath)
    return subprocess.run([python, '-c', textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def write_fake_plugin(site: Path, dist: str, package: str, body: str,
                      entry_name: str | None = None) -> None:
    """A plugin distribution made by hand: a module and its dist-info."""
    (site / f'{package}.py').write_text(textwrap.dedent(body))
    info = site / f'{dist}-0.1.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(
        f'Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n')
    (info / 'entry_points.txt').write_text(
        f'[perception.plugins]\n{entry_name or package} = {package}\n')


def test_in_tree_plugins_are_discovered_and_listed():
    result = run_python("""
        from perception.registry import MODELS
        from perception.plugins import load_plugins
        MODELS.get('TimmClassifier')
        plugins = load_plugins()
        for name in ('mim', 'driving', 'medical'):
            assert plugins[name].loaded, plugins[name].error
        print(sorted(p.package for p in plugins.values()))
    """)
    assert result.returncode == 0, result.stderr
    assert "'perception_driving', 'perception_medical', 'perception_mim'" \
        in result.stdout


def test_plugins_command_lists_distribution_and_registrations():
    result = run_python('from perception.cli import main; '
                        "raise SystemExit(main(['plugins']))")
    assert result.returncode == 0, result.stdout + result.stderr
    for package in ('perception_mim', 'perception_driving',
                    'perception_medical'):
        assert f'package {package}, distribution perception-toolkit' \
            in result.stdout
    assert 'commands:' in result.stdout


def test_broken_plugin_is_named_and_others_still_load(tmp_path):
    write_fake_plugin(tmp_path, 'broken-plugin', 'broken_plugin',
                      "raise RuntimeError('this plugin is broken on purpose')")
    code = """
        from perception.cli import main
        raise SystemExit(main(['plugins']))
    """
    result = run_python(code, pythonpath=[str(tmp_path)])
    assert result.returncode == 1  # a failed plugin makes the listing fail
    assert 'broken_plugin, distribution broken-plugin 0.1 [failed]' \
        in result.stdout
    assert 'this plugin is broken on purpose' in result.stdout
    assert 'package perception_mim' in result.stdout
    assert '[loaded]' in result.stdout

    listing = run_python("from perception.cli import main; "
                         "raise SystemExit(main(['--help']))",
                         pythonpath=[str(tmp_path)])
    assert listing.returncode == 0, listing.stderr
    assert 'Not loaded: broken_plugin' in ' '.join(listing.stdout.split())
    assert 'synth-drive' in listing.stdout  # the others' commands still show

    strict = run_python(code, {'PERCEPTION_STRICT_PLUGINS': '1'},
                        pythonpath=[str(tmp_path)])
    assert strict.returncode != 0
    assert 'PluginLoadError' in strict.stderr
    assert "plugin 'broken_plugin'" in strict.stderr


def test_missing_dependency_is_reported_as_disabled_with_pip_hint(tmp_path):
    write_fake_plugin(tmp_path, 'needs-extra', 'needs_extra',
                      'import a_package_that_is_not_installed_xyz')
    result = run_python('from perception.cli import main; '
                        "raise SystemExit(main(['plugins']))",
                        pythonpath=[str(tmp_path)])
    assert '[disabled]' in result.stdout
    assert 'to enable: pip install a-package-that-is-not-installed-xyz' \
        in result.stdout


def test_disable_variable_turns_autoload_off():
    result = run_python("""
        from perception.registry import MODELS
        from perception.plugins import load_plugins
        assert MODELS.get('TimmClassifier') is not None  # the core still works
        assert load_plugins() == {}, load_plugins()
        from perception.plugins import import_plugin_module
        import perception_mim  # cheap: registers nothing by itself
        assert MODELS.module_dict.get('MAE') is None
        import_plugin_module('perception_mim')  # explicit loading registers
        assert MODELS.module_dict.get('MAE') is not None
        print('ok')
    """, {'PERCEPTION_DISABLE_PLUGIN_AUTOLOAD': '1'})
    assert result.returncode == 0, result.stderr
    assert 'ok' in result.stdout


def test_duplicate_name_from_two_plugins_names_both(tmp_path):
    body = """
        from perception.registry import MODELS
        @MODELS.register_module()
        class SameName:
            pass
    """
    write_fake_plugin(tmp_path, 'first-dist', 'first_plugin', body)
    write_fake_plugin(tmp_path, 'second-dist', 'second_plugin', body)
    result = run_python("""
        from perception.plugins import load_plugins
        from perception.registry import MODELS
        MODELS.get('x')
        failed = [p for p in load_plugins().values() if not p.loaded]
        print(failed[0].error)
    """, pythonpath=[str(tmp_path)])
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "'SameName' is registered twice in the perception::model" in message
    assert "plugin 'first_plugin' (distribution first-dist)" in message
    assert "plugin 'second_plugin' (distribution second-dist)" in message


def test_unknown_type_names_registry_close_matches_and_plugins():
    from perception._registry import UnknownTypeError
    from perception.registry import MODELS
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type='TimmClasifier', model_name='x',
                          num_classes=2))
    message = str(info.value)
    assert "'TimmClasifier' is not in the perception::model registry" \
        in message
    assert 'Did you mean: TimmClassifier' in message
    assert 'Plugins loaded:' in message and 'mim' in message


def test_translate_mmengine_missing_type_error():
    from perception.registry import translate_unknown_type
    exc = KeyError('TimmClasifier is not in the perception::model registry. '
                   'Please check whether the value of `TimmClasifier` is '
                   'correct or it was registered as expected.')
    translated = translate_unknown_type(exc)
    assert translated is not None
    assert 'Did you mean: TimmClassifier' in str(translated)
    assert translate_unknown_type(KeyError('something else')) is None


@pytest.mark.timeout(600)
def test_installed_template_plugin_adds_model_source_and_command(tmp_path):
    """Install the template into a throwaway venv that sees this project
    through a .pth file; the project's own .venv is never modified."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages',
                    '--without-pip', str(venv)], check=True, timeout=120)
    python = venv / 'bin' / 'python'
    purelib = subprocess.run(
        [str(python), '-c',
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, 'perception_project.pth').write_text(
        sysconfig.get_paths()['purelib'] + '\n')
    # a copy, so the build leaves nothing in the source tree
    template = shutil.copytree(TEMPLATE, tmp_path / 'template')
    subprocess.run([str(python), '-m', 'pip', 'install', '--no-deps',
                    '--no-build-isolation', '--no-index', '--quiet',
                    str(template)], check=True, timeout=300,
                   capture_output=True)
    own_site = Path(sysconfig.get_paths()['purelib'])
    assert not list(own_site.glob('perception_plugin_template*'))
    result = run_python("""
        from perception.registry import MODELS
        from perception.sources import open_source
        from perception.cli import main
        import mmengine, torch
        cfg = mmengine.Config(dict(model=dict(type='TemplateTinyNet',
                                              num_classes=3)))
        model = MODELS.build(cfg.model)
        print('logits', tuple(model(torch.zeros(2, 3, 8, 8)).shape))
        with open_source('counter://4') as source:
            print('frames', [int(f.image[0, 0, 0]) for f in source])
        raise SystemExit(main(['template-hello', 'tester']))
    """, python=str(python))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'logits (2, 3)' in result.stdout
    assert 'frames [0, 1, 2, 3]' in result.stdout
    assert 'hello tester from perception_template' in result.stdout
    listing = run_python('from perception.cli import main; '
                         "raise SystemExit(main(['plugins']))",
                         python=str(python))
    assert 'template: package perception_template, distribution ' \
        'perception-plugin-template 0.1.0 [loaded]' in listing.stdout
    assert 'TemplateTinyNet' in listing.stdout
    assert 'CounterOpener' in listing.stdout
