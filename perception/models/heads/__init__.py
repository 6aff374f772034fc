"""Dense prediction heads (in ``MODELS``)."""
from perception.models.heads.postprocess import postprocess_detections
from perception.models.heads.tal_det_head import HeadLabelError, TALDetHead

__all__ = ['TALDetHead', 'HeadLabelError', 'postprocess_detections']
