"""Every detection config builds, trains a step and predicts on a generated
drive through its own pipelines (data roots pointed at the drive, the
pretrained configs' init_cfg left out: initialisation from pretraining work
dirs is tested in tests/plugins/mim/test_finetune_init.py)."""
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
# CT lesion configs read DICOM studies: tests/plugins/medical/lesions/test_lesion_configs.py
ALL = sorted(p for p in glob.glob(str(REPO / 'configs/detection/*.py'))
             if '_synth-ct-' not in p)
#: pretrained twins differ from their scratch config only by init_cfg
#: (checked below), so the scratch ones train here
PRETRAINED = [p for p in ALL if '-mae_' in p or '-fcmae_' in p]
CONFIGS = [p for p in ALL if p not in PRETRAINED]
pytest.importorskip('perception_driving', reason='the dataset readers live '
                    'in the driving plugin')


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp('drive') / 'd'
    assert main(['synth-drive', str(out), '--seed', '9', '--frames', '2',
                 '--size', '320', '180', '--cameras', '1',
                 '--formats', 'kitti', 'bdd100k']) == 0
    return out


def _point_at(dataset: dict, drive: Path) -> dict:
    """The config's dataset, reading the generated drive."""
    if dataset['type'] == 'ConcatDataset':
        return _point_at(dataset['datasets'][0], drive)
    dataset = dict(dataset)
    if dataset['type'] == 'KittiDataset':
        dataset.update(data_root=str(drive / 'kitti' / 'training'),
                       class_map=str(drive / 'kitti' / 'class_map.yaml'))
        dataset.pop('split_file', None)
    else:
        dataset.update(data_root=str(drive / 'bdd100k'),
                       ann_file='labels/det_20/det_train.json',
                       img_dir='images/100k/train', img_shape=None)
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
        sample = model.predict(data['inputs'], data['data_samples'])[0]
    boxes = sample.pred_instances.bboxes
    assert boxes.shape[1] == 4
    if len(boxes):  # source pixels of the 320x180 frame
        assert boxes[:, 2].max() <= 320 and boxes[:, 3].max() <= 180
