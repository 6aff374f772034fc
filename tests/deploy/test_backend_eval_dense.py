"""What ships is what was measured, for segmentors and classifiers:
`perception test CONFIG BUNDLE --backend onnxruntime` gives the config's
metric (mIoU on the label maps of a generated drive, accuracy on its
time-of-day labels) equal to the PyTorch checkpoint's. Tiny ConvNeXt
models with spread untrained weights (the metric compares two runs of one
model, not a trained one); slow (a generated drive, two exports and four
test runs): run with -m slow."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from perception import apis
from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
pytest.importorskip('onnxruntime')
pytest.importorskip('perception_driving', reason='the dataset readers live '
                    'in the driving plugin')
TINY = '''dict(_delete_=True, type='ConvNeXt', out_indices={indices},
    arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48)))'''
LOADERS = '''
pipeline = [dict(type='LoadImage'),
            dict(type='Resize', scale=(128, 72), keep_ratio=SEG)]
pipeline += [dict(type='LoadSegMap')] if SEG else []
pipeline += [dict(type='PackInputs')]
test_dataloader = dict(_delete_=True, batch_size=2, num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_data(pipeline))
val_dataloader = test_dataloader
'''


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp('drive') / 'd'
    assert main(['synth-drive', str(out), '--seed', '3', '--frames', '3',
                 '--size', '160', '96', '--cameras', '1', '--formats',
                 'bdd100k', 'cityscapes']) == 0
    return out


def _config(tmp: Path, drive: Path, task: str) -> Path:
    if task == 'segmentation':
        base = REPO / ('configs/segmentation/fpnseg_vit-tiny-p16_simplefpn_'
                       '1000it-20min_synth-drives-semseg.py')
        text = f'''_base_ = ['{base}']
SEG = True
def _data(pipeline):
    return dict(type='CityscapesDataset',
                data_root='{drive}/cityscapes',
                class_map='{drive}/cityscapes/class_map.yaml', test_mode=True,
                pipeline=pipeline)
model = dict(backbone={TINY.format(indices=(0, 1, 2, 3))},
             neck=dict(_delete_=True, type='FPN', in_channels=[16, 24, 32, 48],
                       out_channels=16, in_indices=(0, 1, 2, 3)),
             head=dict(in_channels=16, channels=16))
'''
    else:
        base = REPO / ('configs/classification/mlp_vit-tiny-p16_500it-20min_'
                       'synth-drives-timeofday.py')
        text = f'''_base_ = ['{base}']
SEG = False
def _data(pipeline):
    return dict(type='Bdd100kSceneDataset',
                data_root='{drive}/bdd100k',
                ann_file='labels/det_20/det_train.json',
                data_prefix=dict(img='images/100k/train'),
                attribute='timeofday',
                classes=['daytime', 'dawn/dusk', 'night'], test_mode=True,
                pipeline=pipeline)
model = dict(backbone={TINY.format(indices=(3, ))},
             head=dict(in_channels=48, hidden_channels=(32, )))
'''
    path = tmp / f'tiny_{task}.py'
    path.write_text(text + LOADERS)
    return path


def _checkpoint(tmp: Path, config: Path) -> Path:
    from perception.deploy.tasks import task_of_model
    from perception.engine.config import load_config
    from perception.registry import MODELS
    cfg = load_config(str(config)).model.to_dict()
    cfg['backbone'].pop('init_cfg', None)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    with torch.no_grad():  # untrained heads: near-constant outputs
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        if task_of_model(model) == 'classification':
            # lean towards the first frame's class, so accuracy is not 0
            from perception.registry import DATASETS
            dataset = DATASETS.build(load_config(str(config))
                                     .test_dataloader.dataset)
            label = int(dataset[0]['data_samples'].gt_label)
            last = [m for m in model.head.modules()
                    if isinstance(m, torch.nn.Linear)][-1]
            last.bias[label] += 5.0
    path = tmp / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.parametrize('task,metric,options', [
    ('segmentation', 'seg/mIoU', {}),
    ('segmentation', 'seg/mIoU', dict(argmax=True, labels_dtype='uint8')),
    ('classification', 'accuracy/top1', {}),
])
def test_the_bundles_metric_equals_the_checkpoints(tmp_path, drive, task,
                                                   metric, options):
    config = _config(tmp_path, drive, task)
    ckpt = _checkpoint(tmp_path, config)
    bundle = apis.export(str(config), str(ckpt), out=str(tmp_path / 'b'),
                         legacy=True, **options).bundle_dir
    eager = apis.test(str(config), str(ckpt), work_dir=str(tmp_path / 'w'))
    shipped = apis.test(str(config), bundle, work_dir=str(tmp_path / 'w'),
                        backend='onnxruntime')
    assert eager[metric] > 0  # something to compare
    # logits: the same bilinear map to the source as PyTorch; the in-graph
    # class map: nearest neighbour (borders move by a pixel)
    tolerance = 1.0 if options.get('argmax') else 1e-3
    assert shipped[metric] == pytest.approx(eager[metric], abs=tolerance)
