"""The packaged perception models on real pictures: a photo and printed text."""

from __future__ import annotations

from pathlib import Path

from kotae.providers.vision.perception import PerceptionModels, open_image
from tests.api.test_image_input import invoice_png

DATA = Path(__file__).parent.parent.parent / "data"


def test_photo_is_classified_and_described_as_automatic() -> None:
    models = PerceptionModels()
    img = open_image((DATA / "chelsea.jpg").read_bytes(), 10**8)
    seen = models.perceive(img, "JPEG")
    assert (seen.width, seen.height) == (451, 300)
    assert seen.labels[0][0] in ("Egyptian cat", "tabby", "tiger cat")
    assert seen.labels[0][1] > 0.5
    text = seen.describe(1)
    assert text.startswith("[Image 1: automatic description")
    assert "cannot see the image" in text
    assert seen.labels[0][0] in text


def test_printed_text_is_read_in_order() -> None:
    seen = PerceptionModels().perceive(open_image(invoice_png(), 10**8), "PNG")
    assert len(seen.text_lines) == 2
    assert "42.50" in seen.text_lines[0]
    assert "March" in seen.text_lines[1]
    assert seen.colours[0][0] == "white"
