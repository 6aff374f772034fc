"""CTOrganSegDataset: organ labels per slice from the SEGs of a generated
study equal organs.npz (patients split as the lesion datasets split them);
refusals (an unknown segment label, no SEG at all); the CT organ configs
(scratch and MAE twin) build and read a study; and `perception train` +
`perception test` of a tiny CT organ config reporting mIoU, its predicted
masks written as DICOM SEG and read back onto the series."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from mmengine.dataset import pseudo_collate

from perception.cli import main
from perception.engine.config import load_config
from perception.fileio import load_checkpoint_file, resolve_checkpoint
from perception.registry import DATASETS, MODELS
from perception_medical import load_series, register
from perception_medical.datasets.organs import OrganLabelError
from perception_medical.dicom.seg_read import read_seg
from perception_medical.segmentation import write_predicted_seg
from perception_medical.synth.organs import ORGAN_CLASSES, read_organ_labels
from perception_medical.synth.study import write_ct_study

REPO = Path(__file__).resolve().parents[4]
SCRATCH = REPO / ('configs/segmentation/fpnseg_vit-tiny-p16_simplefpn_'
                  '1000it-20min_synth-ct-organs.py')
PRETRAINED = REPO / ('configs/segmentation/fpnseg_vit-tiny-p16-mae_simplefpn_'
                     '1000it-20min_synth-ct-organs.py')


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    register()
    return write_ct_study(tmp_path_factory.mktemp('organs'), n_patients=3,
                          size=48, n_slices=6, lesions_per_patient=1, seed=12,
                          quiet=True, organ_masks=True)


def _dataset(study, tmp_path, **kwargs):
    cfg = dict(type='CTOrganSegDataset', data_root=str(study.root),
               series_dirs=['dicom'], seg_dir='organs',
               index_file=str(tmp_path / 'index' / 'i.json'),
               pipeline=[dict(type='LoadCTSegMap'), dict(type='PackInputs')])
    return DATASETS.build(dict(cfg, **kwargs))


def test_slices_carry_the_organ_labels_of_their_series(study, tmp_path):
    train = _dataset(study, tmp_path, split='train', val_fraction=0.34)
    val = _dataset(study, tmp_path, split='val', val_fraction=0.34)
    assert list(train.metainfo['classes']) == list(ORGAN_CLASSES)
    patients = [{d.get_data_info(i)['patient'] for i in range(len(d))}
                for d in (train, val)]
    assert patients[0] and patients[1] and not patients[0] & patients[1]
    assert len(train) + len(val) == 3 * 6
    by_uid = {uid: read_organ_labels(study.root / e['labels'])[0]
              for uid, e in study.organs.items()}
    for dataset in (train, val):
        for i in range(len(dataset)):
            item = dataset[i]
            meta = item['data_samples'].metainfo
            want = by_uid[meta['series_uid']][meta['slice_index']]
            got = item['data_samples'].gt_sem_seg.data[0].numpy()
            np.testing.assert_array_equal(got, want)
            assert item['inputs'].shape == (1, 48, 48)


def test_unknown_segment_label_is_refused(study, tmp_path):
    with pytest.raises(OrganLabelError, match=r"SegmentLabel 'liver' is none "
                       r"of the classes .* add it"):
        _dataset(study, tmp_path, split='all', metainfo=dict(
            classes=['background', 'body', 'lungs', 'heart']))


def test_no_seg_is_an_error_naming_the_folder(tmp_path):
    register()
    bare = write_ct_study(tmp_path / 'bare', n_patients=1, size=32,
                          n_slices=4, seed=1, quiet=True)
    (bare.root / 'organs').mkdir()
    with pytest.raises(OrganLabelError, match='has a SEG under .*organs.*'
                       '--organ-masks'):
        _dataset(bare, tmp_path, split='all')


def test_segment_labels_match_by_name_in_any_order(study, tmp_path):
    # the dataset's class order, not the SEG's segment numbers, decides
    classes = ['background', 'heart', 'liver', 'lungs', 'body']
    data = _dataset(study, tmp_path, split='all', metainfo=dict(classes=classes))
    info = data.get_data_info(0)
    want = read_organ_labels(study.root / study.organs[info['series_uid']][
        'labels'])[0][info['slice_index']]
    remap = np.array([classes.index(c) for c in ORGAN_CLASSES])
    np.testing.assert_array_equal(info['ct_seg_map'], remap[want])


def test_seg_label_written_as_dicom(study):
    seg = pydicom.dcmread(study.root / next(iter(study.organs.values()))['seg'])
    assert [s.SegmentLabel for s in seg.SegmentSequence] == \
        list(ORGAN_CLASSES[1:])
    assert {s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning
            for s in seg.SegmentSequence} == {'Entire body', 'Lung', 'Liver',
                                              'Heart'}


@pytest.mark.parametrize('path', [SCRATCH, PRETRAINED], ids=os.path.basename)
def test_ct_organ_configs_build_and_read_a_study(path, study, tmp_path):
    cfg = load_config(str(path))
    init = cfg.model.backbone.pop('init_cfg', None)
    if path == PRETRAINED:  # the twin differs by init_cfg alone
        assert init['type'] == 'Pretrained' and init['checkpoint']
        assert cfg.model.to_dict() == load_config(str(SCRATCH)).model.to_dict()
        return
    pre = cfg.model.data_preprocessor
    assert len(pre.windows) == len(pre.channel_meaning) == \
        cfg.model.backbone.in_chans == len(pre.mean)
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.test_dataloader.dataset.data_root != \
        cfg.train_dataloader.dataset.data_root  # unseen seeds
    model = MODELS.build(cfg.model)
    index = dict(data_root=str(study.root),
                 index_file=str(tmp_path / 'index' / 'i.json'))
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, **index))
    test = DATASETS.build(dict(cfg.test_dataloader.dataset, **index))
    assert list(train.metainfo['classes']) == list(model.class_names)
    item, source = train[0], test[0]['data_samples']
    assert item['inputs'].shape == (1, 256, 256)  # fitted to the input size
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 256, 256)
    assert source.gt_sem_seg.data.shape == (1, 48, 48)  # source pixels
    assert source.img_shape == (256, 256)
    batch = model.data_preprocessor(pseudo_collate([item]), True)
    assert batch['inputs'].shape[1] == 2  # lung and mediastinum windows


def _tiny_config(tmp_path: Path, study) -> Path:
    text = f'''
_base_ = ['{SCRATCH}']
ROOT = '{study.root}'
INDEX = '{tmp_path}/index/i.json'
meta_keys = ('img_path', 'img_shape', 'ori_shape', 'scale_factor',
             'homography_matrix', 'series_uid', 'slice_index', 'affine')
train_pipeline = [dict(type='LoadCTSegMap'),
                  dict(type='Resize', scale=(64, 64), keep_ratio=True),
                  dict(type='PackInputs', meta_keys=meta_keys)]
test_pipeline = [dict(type='Resize', scale=(64, 64), keep_ratio=True),
                 dict(type='LoadCTSegMap'),
                 dict(type='PackInputs', meta_keys=meta_keys)]
def _data(split, pipeline):
    return dict(data_root=ROOT, index_file=INDEX, split=split,
                val_fraction=0.34, pipeline=pipeline)
model = dict(backbone=dict(img_size=(64, 64), depth=2),
             neck=dict(out_channels=32), head=dict(in_channels=32, channels=32))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=_data('train', train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=_data('val', test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=6, val_interval=6)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3))
default_hooks = dict(logger=dict(type='LoggerHook', interval=2))
'''
    path = tmp_path / 'tiny_ct_organs.py'
    path.write_text(text)
    return path


@pytest.mark.slow  # 40 s alone, minutes on a shared CPU
def test_ct_organ_segmentation_train_then_test(study, tmp_path, capsys):
    torch.manual_seed(0)
    config = _tiny_config(tmp_path, study)
    work, pictures = tmp_path / 'work', tmp_path / 'pictures'
    assert main(['train', str(config), '--work-dir', str(work)]) == 0
    assert main(['test', str(config), str(work), '--work-dir', str(work),
                 '--show-dir', str(pictures)]) == 0
    log = capsys.readouterr().out
    assert 'seg/mIoU: ' in log and 'seg/IoU.lungs: ' in log
    miou = float(log.rsplit('seg/mIoU: ', 1)[1].split()[0])
    assert 0 <= miou <= 100
    assert len(list(pictures.glob('*.png'))) == 6  # one per val slice
    # the trained segmentor's masks of the val series, written as DICOM SEG
    # of the source series, read back onto it to the same labels
    cfg = load_config(str(config))
    model = MODELS.build(cfg.model)
    model.load_state_dict(load_checkpoint_file(
        resolve_checkpoint(str(work)), map_location='cpu')['state_dict'])
    model.eval()
    val = DATASETS.build(cfg.val_dataloader.dataset)
    with torch.no_grad():
        samples = [s for i in range(len(val))
                   for s in model.test_step(pseudo_collate([val[i]]))]
    uid = samples[0].series_uid
    volume = load_series(study.root / next(
        s['folder'] for s in study.series if s['series_uid'] == uid))
    path = write_predicted_seg(tmp_path / 'pred_seg.dcm', samples, volume,
                               model.class_names)
    read = read_seg(path, volume)
    assert read.classes == list(model.class_names)
    for sample in samples:
        np.testing.assert_array_equal(read.labels[sample.slice_index],
                                      sample.pred_sem_seg.data[0].numpy())


def test_mae_ct_weights_load_into_the_two_window_segmentor(tmp_path):
    """One-channel MAE CT weights into the lung + mediastinum channels: the
    patch embedding repeated / 2, every block as pretrained."""
    cfg = load_config(str(PRETRAINED))
    mae = MODELS.build(dict(type='VisionTransformer', arch='tiny',
                            patch_size=16, in_chans=1, img_size=224,
                            pos_embed_type='sincos'))
    ckpt = tmp_path / 'mae_ct.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in mae.state_dict().items()},
                    meta=dict()), ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = MODELS.build(cfg.model)
    model.init_weights()
    got = model.backbone.state_dict()
    src = mae.patch_embed.proj.weight.detach()
    torch.testing.assert_close(got['patch_embed.proj.weight'],
                               src.repeat(1, 2, 1, 1) / 2)
    torch.testing.assert_close(got['blocks.7.mlp.fc1.weight'],
                               mae.state_dict()['blocks.7.mlp.fc1.weight'])


@pytest.mark.parametrize('type_name', [
    'CTOrganSegDataset', 'DicomSliceDataset', 'LesionDetectionDataset',
    'LesionSliceClassificationDataset'])
def test_every_ct_dataset_keeps_its_paths_out_of_run_outputs(type_name):
    """The CT datasets' base class declares their path arguments private,
    so a config naming a patient's folder is redacted with no ``privacy``
    section (the organ dataset's data_root and seg_dir were not)."""
    from mmengine.config import Config

    from perception.engine.privacy import redact_config, redactor_for
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type=type_name, data_root='/archive/DOE_JOHN_19610101',
        seg_dir='DOE_JOHN_seg', index_file='/cache/DOE_JOHN.json',
        pipeline=[]))))
    redactor = redactor_for(cfg)
    assert redactor is not None
    assert {'/archive/DOE_JOHN_19610101', '/cache/DOE_JOHN.json'} <= \
        redactor.values
    assert 'DOE_JOHN' not in redact_config(cfg, redactor).pretty_text
