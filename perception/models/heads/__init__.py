"""Heads (in ``MODELS``): dense detection, semantic segmentation,
classification on pooled features."""
from perception.models.heads.cls_head import LinearClsHead, MLPClsHead
from perception.models.heads.postprocess import postprocess_detections
from perception.models.heads.seg_head import FPNSegHead, SegLabelShapeError
from perception.models.heads.tal_det_head import HeadLabelError, TALDetHead

__all__ = ['TALDetHead', 'HeadLabelError', 'postprocess_detections',
           'FPNSegHead', 'SegLabelShapeError', 'LinearClsHead', 'MLPClsHead']
