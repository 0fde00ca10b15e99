from kotae.providers.inference.llama_cpp import StopMatcher


def test_cuts_at_stop_split_across_pieces() -> None:
    m = StopMatcher(["<|im_end|>"])
    out = []
    for piece in ["Hello", " wor", "ld<|im", "_end|>", "after"]:
        text, hit = m.feed(piece)
        out.append(text)
        if hit:
            break
    assert "".join(out) == "Hello world"


def test_holds_back_only_possible_prefixes() -> None:
    m = StopMatcher(["END"])
    assert m.feed("abcE") == ("abc", False)
    assert m.feed("x") == ("Ex", False)
    assert m.feed("EN") == ("", False)
    assert m.flush() == "EN"


def test_no_stops_passes_through() -> None:
    assert StopMatcher([]).feed("abc") == ("abc", False)


def test_integer_ranges_become_enums() -> None:
    from kotae.providers.inference.tool_calls import enforceable

    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "m": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
            "big": {"type": "integer", "minimum": 0, "maximum": 10**9},
        },
    }
    out = enforceable(schema)
    assert out["properties"]["n"] == {"enum": [1, 2, 3]}
    assert out["properties"]["m"] == {"enum": [1, 2]}
    assert out["properties"]["big"]["type"] == "integer"
