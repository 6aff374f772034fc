"""The CT lesion detection configs: their data (LesionDetectionDataset, 2.5D
slabs, patient-level splits, the lesion-balanced sampler), evaluators
(FROC + COCO slice AP), a stride-4 level, the PretrainedCfg they record;
each scratch config takes a training step and predicts in source pixels on
a generated study; the MAE twin loads a one-channel CT pretraining
checkpoint into its three slice channels, the FCMAE twin the six-channel
slab pretraining as it is."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip('pydicom')

from mmengine.dataset import pseudo_collate  # noqa: E402

from perception.data import PretrainedCfg  # noqa: E402
from perception.engine.config import load_config  # noqa: E402
from perception.registry import DATA_SAMPLERS, DATASETS, MODELS  # noqa: E402
from perception_medical import register  # noqa: E402
from perception_medical.synth import write_ct_study  # noqa: E402

REPO = Path(__file__).resolve().parents[4]
ALL = sorted(glob.glob(str(REPO / 'configs/detection/*_synth-ct-lesions.py')))
TWIN_TAGS = ('-mae_', '-fcmae_')   # a pretrained twin's name: its base's plus a tag
PRETRAINED = [p for p in ALL if any(t in p for t in TWIN_TAGS)]
SCRATCH = [p for p in ALL if p not in PRETRAINED]


def _base_of(twin: str) -> str:
    for tag in TWIN_TAGS:
        twin = twin.replace(tag, '_')
    return twin


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp('ct_lesions')
    write_ct_study(root, n_patients=2, size=64, n_slices=12, lesions_per_patient=2,
                   seed=31, quiet=True)
    return root


def test_there_are_scratch_and_pretrained_configs():
    assert len(SCRATCH) >= 2 and len(PRETRAINED) >= 2
    assert all(os.path.exists(_base_of(p)) for p in PRETRAINED)


@pytest.mark.parametrize('path', ALL, ids=os.path.basename)
def test_config_data_and_evaluators(path):
    cfg = load_config(path)
    train = cfg.train_dataloader.dataset
    assert train.type == 'LesionDetectionDataset' and train.split == 'train'
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.val_dataloader.dataset.data_root == train.data_root  # held-out patients
    assert cfg.test_dataloader.dataset.data_root != train.data_root  # unseen seeds
    assert 3 <= train.num_slices <= 9 and train.num_slices % 2
    assert cfg.train_dataloader.sampler.type == 'LesionBalancedSampler'
    assert [e['type'] for e in cfg.test_evaluator] == ['FROCMetric', 'CocoMetric']
    assert cfg.model.head.strides[0] == 4  # the neck's: checked built below
    pre = cfg.model.data_preprocessor
    in_chans = cfg.model.backbone.in_chans
    assert len(pre.channel_meaning) == in_chans == train.num_slices * len(pre.windows)
    assert len(pre.mean) == len(pre.std) == in_chans


@pytest.mark.parametrize('path', PRETRAINED, ids=os.path.basename)
def test_pretrained_twin_differs_only_by_init(path):
    twin, base = load_config(path), load_config(_base_of(path))
    init = twin.model.backbone.pop('init_cfg')
    assert init['type'] == 'Pretrained' and init['checkpoint']
    assert twin.model.to_dict() == base.model.to_dict()


@pytest.mark.slow  # full-size models at 256 x 256 (the e2e test trains a small one)
@pytest.mark.parametrize('path', SCRATCH, ids=os.path.basename)
def test_config_trains_a_step_and_predicts(path, study, tmp_path):
    cfg = load_config(path)
    ds_cfg = dict(cfg.train_dataloader.dataset, data_root=str(study), split='all',
                  index_file=str(tmp_path / 'index' / 'i.json'))
    ds = DATASETS.build(ds_cfg)
    sampler = DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler, dataset=ds, seed=0))
    picks = [i for i in sampler if ds.get_data_info(i)['has_lesion']][:2]
    model = MODELS.build(cfg.model)
    assert tuple(model.neck.strides) == tuple(model.head.strides) == (4, 8, 16, 32)
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in picks]), True)
    assert batch['inputs'].shape[1] == cfg.model.backbone.in_chans
    losses = model(**batch, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    test_ds = DATASETS.build(dict(ds_cfg, pipeline=cfg.test_dataloader.dataset.pipeline,
                                  test_mode=True))
    with torch.no_grad():
        (sample, ) = model.test_step(pseudo_collate([test_ds[picks[0]]]))
    assert sample.ori_shape == (64, 64) and sample.img_shape == (256, 256)
    boxes = sample.pred_instances.bboxes
    assert (boxes >= 0).all() and (boxes <= 64).all()  # source pixels
    record = PretrainedCfg.from_model(model, cfg.test_dataloader.dataset.pipeline,
                                      ['lesion'], ds.slice_offsets)
    assert record.slice_offsets == [-1, 0, 1]
    assert record.channel_names() == list(cfg.model.data_preprocessor.channel_meaning)
    assert record.windows and record.class_names == ['lesion']


def test_mae_ct_weights_load_into_the_slab_detector(tmp_path):
    """One-channel MAE CT weights into three slice channels: the patch
    embedding repeated / 3, every block as pretrained."""
    (path, ) = [p for p in PRETRAINED if '-mae_' in p]
    cfg = load_config(path)
    mae = MODELS.build(dict(type='VisionTransformer', arch='tiny', patch_size=16,
                            in_chans=1, img_size=224, pos_embed_type='sincos'))
    ckpt = tmp_path / 'mae_ct.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in mae.state_dict().items()},
                    meta=dict()), ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = MODELS.build(cfg.model)
    model.init_weights()
    got = model.backbone.state_dict()
    src = mae.patch_embed.proj.weight.detach()
    torch.testing.assert_close(got['patch_embed.proj.weight'], src.repeat(1, 3, 1, 1) / 3)
    torch.testing.assert_close(got['blocks.5.attn.qkv.weight'],
                               mae.state_dict()['blocks.5.attn.qkv.weight'])
    # a slab of three equal slices gives the one-channel model's embedding
    x = torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(model.backbone.patch_embed.proj(x.repeat(1, 3, 1, 1)),
                               mae.patch_embed.proj(x), atol=1e-5, rtol=1e-4)


def test_fcmae_ct_pretraining_loads_into_the_slab_detector(tmp_path):
    """The FCMAE CT pretraining sees the detector's six channels (3 slices x
    2 windows, the same windows and order), so every backbone weight,
    the stem included, loads unchanged."""
    (path, ) = [p for p in PRETRAINED if '-fcmae_' in p]
    cfg = load_config(path)
    pre_cfg = load_config(str(REPO / 'configs/pretrain/'
                              'fcmae_convnext-atto_1xb16-20min_synth-ct-lesions.py'))
    det_pre, mim_pre = cfg.model.data_preprocessor, pre_cfg.model.data_preprocessor
    assert [tuple(w) for w in mim_pre.windows] == [tuple(w) for w in det_pre.windows]
    assert list(mim_pre.channel_meaning) == list(det_pre.channel_meaning)
    train = pre_cfg.train_dataloader.dataset      # the detector's training patients
    det_train = cfg.train_dataloader.dataset
    assert (train.split, train.num_slices, train.data_root) == (
        'train', det_train.num_slices, det_train.data_root)
    assert (train.val_fraction, train.split_seed) == (
        det_train.val_fraction, det_train.split_seed)
    fcmae = MODELS.build(pre_cfg.model)
    ckpt = tmp_path / 'fcmae_ct.pth'
    torch.save(dict(state_dict=fcmae.state_dict(), meta=dict()), ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = MODELS.build(cfg.model)
    model.init_weights()
    got, src = model.backbone.state_dict(), fcmae.backbone.state_dict()
    assert got.keys() == src.keys()
    for key in got:
        torch.testing.assert_close(got[key], src[key], msg=key)
