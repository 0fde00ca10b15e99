"""A finished response told again as stream events (`GET /v1/responses/{id}?stream=true` for
one that was not run in the background), through the same emitter as a live run."""

from __future__ import annotations

from openai.types.responses import Response, ResponseUsage

from kotae.providers.inference.base import TokenLogprob
from kotae.services.responses.events import OutputTextDelta, ResponseEmitter, StreamEvent


def replay_events(response: Response, sequence_end: int | None = None) -> list[StreamEvent]:
    """A finished response told again as events, through the same emitter. The live stream
    had more events (a delta a token); with its last number (`sequence_end`), the rebuilt
    events after `response.in_progress` are numbered to end on it, so a client resuming after
    any number it saw still gets the rest up to the terminal event."""
    body = response.model_dump(mode="json", exclude_unset=True, by_alias=True)
    body.pop("usage", None)  # absent until the end, as in the live stream
    start = Response.model_validate(
        {**body, "output": [], "status": "in_progress", "incomplete_details": None, "error": None}
    )
    kept = any(
        getattr(part, "logprobs", None)
        for item in response.output
        if item.type == "message"
        for part in item.content
    )
    emitter = ResponseEmitter(start, keep_logprobs=kept)
    events: list[StreamEvent] = [emitter.created(), emitter.in_progress()]
    for item in response.output:
        if item.type == "web_search_call":
            events.extend(
                emitter.start_web_search(getattr(item.action, "query", None) or "", item.id)
            )
            sources = getattr(item.action, "sources", None)
            events.extend(
                emitter.finish_web_search([s.url for s in sources] if sources is not None else None)
            )
            emitter.response.output[-1] = item
            continue
        if item.type == "file_search_call":
            events.extend(emitter.start_file_search(list(item.queries), item.id))
            events.extend(
                emitter.finish_file_search(
                    [r.model_dump() for r in item.results] if item.results is not None else None
                )
            )
            emitter.response.output[-1] = item
            continue
        if item.type == "function_call":
            events.extend(
                emitter.function_call(
                    item.call_id, item.name, item.arguments, item.id, item.namespace
                )
            )
            continue
        if item.type == "custom_tool_call":
            events.extend(emitter.custom_tool_call(item.call_id, item.name, item.input, item.id))
            continue
        if item.type in ("shell_call", "local_shell_call", "apply_patch_call"):
            events.extend(emitter.whole_item(item))
            continue
        if item.type == "reasoning":
            events.extend(emitter.start_reasoning(item.id))
            text = "".join(part.text for part in item.content or [])
            if text:
                events.append(emitter.reasoning_delta(text))
            events.extend(emitter.finish_reasoning_text())
            for summary in item.summary:
                events.append(emitter.start_summary())
                events.append(emitter.summary_delta(summary.text))
                events.extend(emitter.finish_summary())
            events.append(emitter.finish_reasoning(item.encrypted_content))
            continue
        if item.type != "message":
            continue
        events.extend(emitter.start_message(item.id))
        text = "".join(getattr(part, "text", "") for part in item.content)
        tokens = [
            TokenLogprob(
                t.token, t.bytes, t.logprob, [(a.token, a.bytes, a.logprob) for a in t.top_logprobs]
            )
            for part in item.content
            for t in getattr(part, "logprobs", None) or []
        ]
        if text:
            events.append(emitter.text_delta(text, tokens or None))
        events.extend(
            emitter.finish_message("incomplete" if item.status == "incomplete" else "completed")
        )
    usage = response.usage or ResponseUsage.model_validate(
        {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
        }
    )
    if response.status == "incomplete":
        events.append(emitter.incomplete(usage, "max_output_tokens"))
    elif response.status == "failed":
        events.append(emitter.failed(response.error.message if response.error else "failed"))
    elif response.status == "completed":
        events.append(emitter.completed(usage))
    if sequence_end is not None and sequence_end > events[-1].sequence_number:
        events = _spread(events, sequence_end - events[-1].sequence_number)
    return events


def _spread(events: list[StreamEvent], extra: int) -> list[StreamEvent]:
    """The last message's text delta split into `extra` more pieces, and every event numbered
    again from 0: the replay has as many events as the live stream, the same numbers at its
    start and its end, and no gap (a delta a token is not kept; pieces of the text stand in)."""
    at = next(
        (i for i in range(len(events) - 1, -1, -1) if isinstance(events[i], OutputTextDelta)), None
    )
    if at is None:
        return events
    delta = events[at]
    assert isinstance(delta, OutputTextDelta)
    text, count = delta.delta, extra + 1
    pieces = [
        OutputTextDelta(
            item_id=delta.item_id,
            output_index=delta.output_index,
            content_index=delta.content_index,
            delta=text[i * len(text) // count : (i + 1) * len(text) // count],
            sequence_number=0,
            logprobs=delta.logprobs if i == 0 else [],
        )
        for i in range(count)
    ]
    spread = [*events[:at], *pieces, *events[at + 1 :]]
    for number, event in enumerate(spread):
        event.sequence_number = number
    return spread
