"""Image/file parts become message text (perception) or images (vision models)."""

from __future__ import annotations

from kotae.providers.inference.base import ChatMessage
from kotae.providers.inference.openai_compat import _wire_message
from kotae.services.responses.convert import normalize_input, to_chat_messages
from kotae.services.responses.media import Media, has_media


def test_parts_are_kept_and_resolved_in_place() -> None:
    items = normalize_input(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                ],
            }
        ]
    )
    assert has_media(items)
    part = items[0]["content"][1]
    assert part == {
        "type": "input_image",
        "image_url": "https://example.com/a.png",
        "file_id": None,
        "detail": "auto",
    }
    media = {(items[0]["id"], 1): Media("[Image 1: a cat]", ["data:image/png;base64,AA=="])}
    [message] = to_chat_messages(items, media)
    assert message.content == "What is this?\n\n[Image 1: a cat]"
    assert message.images == ["data:image/png;base64,AA=="]


def test_vision_engines_get_image_parts() -> None:
    wire = _wire_message(ChatMessage("user", "Look", images=["data:image/png;base64,AA=="]))
    assert wire["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    assert _wire_message(ChatMessage("user", "plain"))["content"] == "plain"
