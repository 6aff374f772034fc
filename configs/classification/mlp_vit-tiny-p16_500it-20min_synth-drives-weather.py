# Scene classification (weather: clear, rainy, foggy) of generated drives'
# frames, ViT-Tiny + MLP head from scratch, at most 500 iterations of batch
# 16 or 20 minutes: the classifier and schedule of
# mlp_vit-tiny-p16_500it-20min_synth-drives-timeofday.py on a harder
# attribute (rain streaks and fog are subtler than night). The scratch row
# of the weather rows in docs/benchmarks.md (the fine-tuned row:
# mlp_vit-tiny-p16-mae_500it-20min_synth-drives-weather.py).
#
#   NAME=mlp_vit-tiny-p16_500it-20min_synth-drives-weather
#   perception train configs/classification/$NAME.py --amp
#   perception test configs/classification/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
_base_ = [
    '../_base_/models/cls_vit-tiny-p16.py',
    '../_base_/datasets/synth_drives_weather.py',
    '../_base_/schedules/finetune_500it-20min.py',
]
model = dict(class_names=['clear', 'rainy', 'foggy'])
