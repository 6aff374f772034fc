"""Class colours shared by every picture (boxes, masks, legends)."""
from __future__ import annotations

#: Colours by label (colour-blind-safe Okabe-Ito first, then more).
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
           (0, 114, 178), (213, 94, 0), (204, 121, 167), (255, 255, 255),
           (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255)]
#: Colour of ignore regions and crowd boxes.
IGNORE_COLOUR = (150, 150, 150)
