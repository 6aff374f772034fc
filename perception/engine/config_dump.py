"""Where a run dumps its config: mmengine's ``<work_dir>/<config name>``,
except when that is the config file itself.

mmengine's ``Runner.dump_config`` writes the (possibly redacted) config to
``<work_dir>/<basename of the config>``. A config that already lives there
(``perception train work/config.py --work-dir work``: how the
label-efficiency study lays out its runs) would be overwritten: its comments
lost and, in a run guarded by ``privacy``, its paths replaced by
``<redacted:...>`` tokens, so the ``perception test`` that follows could not
find the data. Such a dump goes beside it as ``<name>_dumped.py`` instead.
"""
from __future__ import annotations

import os
import os.path as osp

from mmengine.dist import master_only


def config_dump_path(work_dir: str, config_file: str | None,
                     timestamp: str) -> str:
    """The file the runner dumps its config to, never ``config_file``."""
    name = osp.basename(config_file) if config_file else f'{timestamp}.py'
    target = osp.join(work_dir, name)
    if config_file and osp.exists(target) and osp.exists(config_file) \
            and osp.samefile(target, config_file):
        stem, ext = osp.splitext(name)
        target = osp.join(work_dir, f'{stem}_dumped{ext}')
    return target


def keeping_source_config(runner_cls: type) -> type:
    """A subclass of ``runner_cls`` whose config dump never overwrites the
    config file it was built from."""

    @master_only
    def dump_config(self) -> None:
        os.makedirs(self.work_dir, exist_ok=True)
        self.cfg.dump(config_dump_path(self.work_dir, self.cfg.filename,
                                       self.timestamp))

    return type(runner_cls.__name__, (runner_cls, ),
                {'dump_config': dump_config,
                 '__module__': runner_cls.__module__,
                 '__doc__': runner_cls.__doc__})
