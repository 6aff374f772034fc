"""Every segmentation and classification config builds its model and reads
a generated drive through its own pipelines (data roots pointed at the
drive), and (slow) trains a step and predicts in source pixels; the
pretrained configs differ from their scratch twins only by init_cfg, and the
linear probe trains only its head."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
import torch

from perception.cli import main
from perception.engine.config import load_config
from perception.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[2]
#: the CT configs read generated CT studies: tests/plugins/medical/datasets/test_organs.py
ALL = sorted(p for p in glob.glob(str(REPO / 'configs/segmentation/*.py'))
             + glob.glob(str(REPO / 'configs/classification/*.py'))
             if '_synth-ct-' not in p)
#: pretrained twins differ from their scratch config only by init_cfg
#: (checked below), so the scratch ones are built here
PRETRAINED = [p for p in ALL if ('-mae_' in p or '-fcmae_' in p)
              and '/linear_' not in p]
PROBES = [p for p in ALL if '/linear_' in p]
CONFIGS = [p for p in ALL if p not in PRETRAINED]
pytest.importorskip('perception_driving', reason='the dataset readers live '
                    'in the driving plugin')


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp('drive') / 'd'
    assert main(['synth-drive', str(out), '--seed', '9', '--frames', '2',
                 '--size', '320', '180', '--cameras', '1',
                 '--formats', 'bdd100k', 'cityscapes']) == 0
    return out


def _point_at(dataset: dict, drive: Path) -> dict:
    """The config's first dataset, reading the generated drive."""
    if dataset['type'] == 'ConcatDataset':
        return _point_at(dataset['datasets'][0], drive)
    dataset = dict(dataset)
    if dataset['type'] == 'CityscapesDataset':
        dataset.update(data_root=str(drive / 'cityscapes'), split='train')
        if dataset.get('class_map'):  # the drive's own ids, else built-in
            dataset['class_map'] = str(drive / 'cityscapes/class_map.yaml')
    elif dataset['type'] == 'Bdd100kSegDataset':
        dataset.update(data_root=str(drive / 'bdd100k'), split='train')
    else:
        dataset.update(data_root=str(drive / 'bdd100k'),
                       ann_file='labels/det_20/det_train.json',
                       data_prefix=dict(img='images/100k/train'))
    return dataset


@pytest.mark.parametrize('path', PRETRAINED, ids=os.path.basename)
def test_pretrained_twin_differs_only_by_init(path):
    scratch = path.replace('-mae_', '_').replace('-fcmae_', '_')
    assert scratch in CONFIGS
    twin, base = load_config(path), load_config(scratch)
    init = twin.model.backbone.pop('init_cfg')
    assert init['type'] == 'Pretrained' and init['checkpoint']
    assert twin.model.to_dict() == base.model.to_dict()
    assert twin.train_dataloader.to_dict() == base.train_dataloader.to_dict()


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_builds_and_reads_the_drive(path, drive):
    cfg = load_config(path)
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    train = DATASETS.build(_point_at(cfg.train_dataloader.dataset, drive))
    test = DATASETS.build(_point_at(cfg.test_dataloader.dataset, drive))
    assert list(train.metainfo['classes']) == list(model.class_names)
    if path in PROBES:  # the backbone frozen, BN + linear trained
        trainable = {n for n, p in model.named_parameters()
                     if p.requires_grad}
        assert trainable == {'head.fc.weight', 'head.fc.bias'}
    item, source = train[0], test[0]['data_samples']
    if cfg.model.type == 'Segmentor':  # train: current; test: source pixels
        assert item['data_samples'].gt_sem_seg.data.shape[-2:] == \
            item['inputs'].shape[-2:]
        assert source.gt_sem_seg.data.shape == (1, 180, 320)
    else:
        assert 0 <= int(source.gt_label) < len(model.class_names)


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_trains_a_step_and_predicts(path, drive):
    cfg = load_config(path)
    cfg.model.backbone.pop('init_cfg', None)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    train = DATASETS.build(_point_at(cfg.train_dataloader.dataset, drive))
    test = DATASETS.build(_point_at(cfg.test_dataloader.dataset, drive))
    assert list(train.metainfo['classes']) == list(model.class_names)
    items = [train[0], train[1]]
    data = model.data_preprocessor(dict(
        inputs=[i['inputs'] for i in items],
        data_samples=[i['data_samples'] for i in items]), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    item = test[0]
    data = model.data_preprocessor(dict(inputs=[item['inputs']],
                                        data_samples=[item['data_samples']]))
    with torch.no_grad():
        sample = model(data['inputs'], data['data_samples'],
                       mode='predict')[0]
    if cfg.model.type == 'Segmentor':  # source pixels of the 320x180 frame
        assert sample.pred_sem_seg.data.shape == (1, 180, 320)
        assert sample.gt_sem_seg.data.shape == (1, 180, 320)
    else:
        assert sample.pred_score.shape == (len(model.class_names), )
