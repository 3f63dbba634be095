"""Bounded, reproducible fuzzing (hypothesis, derandomized) of the tag reader, the MIDI
reader/renderer and playlist import. Longer runs: tests/benchmarks/fuzz_inputs.py.

Every call must return a clean result or raise a MusicsimError, within a time limit.
MIDI is rendered with the sine fallback here (FluidSynth loads a 140 MB SoundFont per
file, too slow for a bounded run); the benchmark fuzzes FluidSynth too.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from musicsim.audio import midi
from tests.robustness import fuzzing
from tests.robustness.helpers import time_limit

LIMIT_S = 20.0
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

ops = st.lists(
    st.tuples(
        st.sampled_from(fuzzing.OPS), st.floats(0, 1, allow_nan=False), st.integers(0, 1 << 16), st.binary(max_size=48)
    ),
    min_size=1,
    max_size=8,
)
# In-place changes keep event framing more often: values, not structure, get damaged.
overwrites = st.lists(
    st.tuples(
        st.sampled_from(("flip", "int", "zero", "flip", "int")),
        st.floats(0, 1, allow_nan=False),
        st.integers(0, 1 << 16),
        st.just(b""),
    ),
    min_size=1,
    max_size=3,
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    return {name: path.read_bytes() for name, path in fuzzing.make_seeds(folder).items()}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-inputs")


def _fuzz(check, folder, name: str, data: bytes) -> str:
    path = fuzzing.write_input(folder, name, data)
    with time_limit(LIMIT_S):
        outcome = fuzzing.run_target(check, path)
    event(f"{check.__name__}: {outcome}")
    return outcome


AUDIO = ["audio.mp3", "audio_v24.mp3", "audio.flac", "audio.ogg", "audio.opus", "audio.wav", "audio.m4a"]
MIDI = ["melody.mid", "drums.mid", "multi.mid"]


@FUZZ
@given(seed=st.sampled_from(AUDIO), mutations=ops, other=st.sampled_from(AUDIO))
def test_fuzz_read_tags(seeds, scratch, seed, mutations, other):
    data = fuzzing.mutate(seeds[seed], mutations, splice_with=seeds[other])
    _fuzz(fuzzing.check_tags, scratch, "input" + seed[seed.index(".") :], data)


@FUZZ
@given(seed=st.sampled_from(MIDI), mutations=st.one_of(overwrites, ops), raw=st.integers(0, 3), render=st.booleans())
def test_fuzz_midi(seeds, scratch, monkeypatch_module, seed, mutations, raw, render):
    # Mostly structure-aware (inside chunks, lengths rewritten) so that notes, tempos and
    # rendering are reached; one time in four raw bytes anywhere, lengths included.
    mutate = fuzzing.mutate if raw == 0 else fuzzing.mutate_midi
    data = mutate(seeds[seed], mutations, splice_with=seeds["multi.mid"])
    _fuzz(fuzzing.check_midi_info, scratch, "input.mid", data)
    if render:
        _fuzz(fuzzing.check_render, scratch, "input.mid", data)


@FUZZ
@given(rnd=st.randoms(use_true_random=False), ext=st.sampled_from([".m3u", ".m3u8"]))
def test_fuzz_read_m3u(scratch, rnd, ext):
    _fuzz(fuzzing.check_m3u, scratch, "input" + ext, fuzzing.random_m3u(random.Random(rnd.random())))


@FUZZ
@given(text=st.text(max_size=300), ext=st.sampled_from([".m3u", ".m3u8"]))
def test_fuzz_read_m3u_text(scratch, text, ext):
    _fuzz(fuzzing.check_m3u, scratch, "input" + ext, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    rnd=st.randoms(use_true_random=False),
    locations=st.lists(st.text(max_size=60), max_size=6),
    titles=st.lists(st.text(max_size=30), max_size=6),
)
def test_fuzz_read_xspf(scratch, rnd, locations, titles):
    _fuzz(fuzzing.check_xspf, scratch, "input.xspf", fuzzing.random_xspf(random.Random(rnd.random())))
    doc = fuzzing.xspf_doc(locations, titles)
    _fuzz(fuzzing.check_xspf, scratch, "input.xspf", doc)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Sine rendering for the bounded MIDI run (see the module docstring)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(midi, "fluidsynth_available", lambda: False)
    yield mp
    mp.undo()


def test_xspf_entity_expansion_and_deep_nesting_are_refused_fast(scratch):
    bomb = fuzzing.xspf_doc(["/a.mp3"], ["&b;"], dtd=True).replace(b"&amp;b;", b"&b;")
    bomb16 = bomb.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    deep = b"<playlist>" + b"<x>" * 100_000 + b"</x>" * 100_000 + b"</playlist>"
    # found by tests/benchmarks/fuzz_inputs.py (--seed 1, input 2109): LookupError escaped
    odd_encoding = fuzzing.xspf_doc(["/a.mp3"], ["t"]).replace(b'encoding="UTF-8"', b'encoding="UTF-j"')
    wrong_encoding = fuzzing.xspf_doc(["/a.mp3"], ["t"]).replace(b'encoding="UTF-8"', b'encoding="UTF-16"')
    with time_limit(LIMIT_S):
        for name, doc in (("bomb", bomb), ("bomb16", bomb16), ("odd", odd_encoding), ("wrong", wrong_encoding)):
            assert (
                fuzzing.run_target(fuzzing.check_xspf, fuzzing.write_input(scratch, f"{name}.xspf", doc)) == "refused"
            )
        assert fuzzing.run_target(fuzzing.check_xspf, fuzzing.write_input(scratch, "deep.xspf", deep)) in (
            "ok",
            "refused",
        )
