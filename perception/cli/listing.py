"""``perception plugins``: what each plugin is and what it registered."""
from __future__ import annotations

from perception.cli.base import Command
from perception.plugins import plugin_infos
from perception.registry import ALL_REGISTRIES, COMMANDS

#: Registry name -> what people call its entries, for the listing.
KINDS = {'model': 'models (backbones, necks, heads, preprocessors)',
         'dataset': 'datasets', 'transform': 'transforms', 'source': 'sources',
         'command': 'commands', 'benchmark': 'benchmarks', 'hook': 'hooks',
         'metric': 'metrics', 'exporter': 'exporters', 'backend': 'backends'}


def _model_kind(name: str) -> str:
    lowered = name.lower()
    for key, kind in (('preprocessor', 'preprocessors'), ('neck', 'necks'),
                      ('head', 'heads'), ('decoder', 'decoders'),
                      ('loss', 'losses')):
        if key in lowered:
            return kind
    if any(k in lowered for k in ('vit', 'convnext', 'backbone', 'resnet')):
        return 'backbones'
    return 'models'


def print_plugins() -> int:
    """Print every plugin, grouped by registry and kind; 0 unless one failed
    to load."""
    infos = plugin_infos(ALL_REGISTRIES)
    if not infos:
        print('no plugins found (entry-point group perception.plugins)')
    failed = 0
    for info in infos:
        print(f'{info.name}: package {info.package}, distribution '
              f'{info.distribution} {info.version} [{info.status}]')
        if not info.loaded:
            failed += 1
            print(f'    error: {info.error}')
            if info.hint:
                print(f'    to enable: {info.hint}')
            continue
        for registry, names in sorted(info.registered.items()):
            if registry == 'model':
                groups: dict[str, list[str]] = {}
                for name in names:
                    groups.setdefault(_model_kind(name), []).append(name)
                for kind, members in sorted(groups.items()):
                    print(f'    {kind}: {", ".join(sorted(members))}')
            else:
                print(f'    {KINDS.get(registry, registry)}: '
                      f'{", ".join(sorted(names))}')
        if not info.registered:
            print('    (registered nothing)')
    return 1 if failed else 0


@COMMANDS.register_module(name='plugins')
class PluginsCommand(Command):
    name = 'plugins'
    help = 'list plugins, their distributions and what they registered'

    def run(self, args) -> int:
        return print_plugins()
