# Scene classification (weather: clear, rainy, foggy) of generated drives'
# frames, from the BDD100K frame attributes synth-drive writes from its
# --weather (clear -> clear, rain -> rainy, fog -> foggy). The drives,
# pipelines and evaluator are those of synth_drives_scene.py (time of day);
# only the attribute differs. Training: 4 clear, 3 rainy and 1 foggy drive
# (400 / 300 / 100 frames); test: one unseen drive of each (60 frames).
_base_ = ['./synth_drives_scene.py']
scene_classes = ['clear', 'rainy', 'foggy']


def _weather(roots, pipeline, test_mode):
    return dict(type='ConcatDataset', datasets=[
        dict(type='Bdd100kSceneDataset', data_root=f'{root}/bdd100k',
             ann_file='labels/det_20/det_train.json',
             data_prefix=dict(img='images/100k/train'),
             attribute='weather', classes=scene_classes,
             test_mode=test_mode, pipeline=pipeline)
        for root in roots])


train_dataloader = dict(dataset=_weather(
    [f'data/seg/train_s{s}' for s in range(1, 9)],
    {{_base_.train_pipeline}}, False))
val_dataloader = dict(dataset=_weather(
    [f'data/seg/test_s{s}' for s in (101, 102, 103)],
    {{_base_.test_pipeline}}, True))
test_dataloader = val_dataloader
