"""Fine-tuning starts from masked pretraining with no conversion step: a
MAE / FCMAE work dir (the runner's checkpoint, named by last_checkpoint) and
the export-backbone folder both fill every encoder key of the core
backbone."""
from __future__ import annotations

import pytest
import torch

from perception.data import PretrainedCfg
from perception.registry import MODELS
from perception_mim.export import export_backbone

from .conftest import TINY_VIT, tiny_mae

CONVNEXT_SMALL = dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32))


def _tiny_fcmae():
    return MODELS.build(dict(
        type='FCMAE', backbone=dict(type='ConvNeXt', arch=CONVNEXT_SMALL),
        decoder=dict(embed_dim=16, depth=1), input_size=(64, 64)))


def _pretraining_work_dir(model, work_dir):
    """What `perception train` leaves: epoch_N.pth with meta (its
    pretrained_cfg) and state_dict, and last_checkpoint naming it."""
    work_dir.mkdir()
    with torch.no_grad():   # not the backbones' initial values
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    path = work_dir / 'epoch_2.pth'
    meta = dict(epoch=2, pretrained_cfg=PretrainedCfg.from_model(
        model).to_dict())
    torch.save(dict(meta=meta, state_dict=model.state_dict(),
                    message_hub=dict()), path)
    (work_dir / 'last_checkpoint').write_text(str(path))
    return str(work_dir)


@pytest.mark.parametrize('kind', ['mae', 'fcmae'])
def test_init_from_a_pretraining_work_dir_and_its_export(tmp_path, kind):
    if kind == 'mae':
        model = tiny_mae()
        backbone_cfg = dict(type='VisionTransformer', arch=TINY_VIT,
                            img_size=32, patch_size=8)
    else:
        model = _tiny_fcmae()
        backbone_cfg = dict(type='ConvNeXt', arch=CONVNEXT_SMALL)
    work_dir = _pretraining_work_dir(model, tmp_path / 'run')
    encoder = {k[len('backbone.'):]: v for k, v in model.state_dict().items()
               if k.startswith('backbone.')}
    export = str(tmp_path / 'export')
    export_backbone(work_dir, export)        # a work dir works here too
    reports = {}
    for source in (work_dir, export):
        backbone = MODELS.build(dict(backbone_cfg, init_cfg=dict(
            type='Pretrained', checkpoint=source)))
        backbone.init_weights()
        report = reports[source] = backbone.load_report
        assert report['missing'] == [] and report['unexpected'] == [], source
        state = backbone.state_dict()
        assert set(state) == set(encoder)
        for key, value in encoder.items():
            assert torch.equal(state[key], value), (source, key)
    # the decoder was dropped and counted, not loaded
    assert sorted(reports[work_dir]['dropped']) == sorted(
        k for k in model.state_dict() if not k.startswith('backbone.'))
    assert reports[export]['dropped'] == []


def test_lora_backbone_from_mae_work_dir(tmp_path):
    work_dir = _pretraining_work_dir(tiny_mae(), tmp_path / 'run')
    vit = MODELS.build(dict(
        type='VisionTransformer', arch=TINY_VIT, img_size=32, patch_size=8,
        frozen_stages=1, lora=dict(rank=2),
        init_cfg=dict(type='Pretrained', checkpoint=work_dir)))
    vit.init_weights()
    assert vit.load_report['missing'] == []
    trainable = [n for n, p in vit.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith('blocks.1.') and 'lora_' in n
                             for n in trainable)
