"""Outliers explained in words: which group, and what sets the track apart from it."""

from __future__ import annotations

import numpy as np

from musicsim.organize.explain import Explanation, Part, explain_outlier, explain_pair

PARTS = [
    Part("overall sound (the network's embedding)", 0, 4),
    Part("its usual fine texture above about 2 kHz", 4, 8, timbre=True),
]
BASELINE = np.array([[0.0, 1.0], [0.0, 1.0]])  # (mean, spread) of each part's cosine between two tracks


def _library(n: int = 60, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "tempo": float(100 + rng.normal(0, 10)),
            "loudness": float(-18 + rng.normal(0, 2)),
            "brightness": float(1500 + rng.normal(0, 200)),
            "percussive": float(np.clip(0.3 + rng.normal(0, 0.05), 0, 1)),
        }
        for _ in range(n)
    ]


def _vectors() -> tuple[np.ndarray, np.ndarray]:
    """A track whose embedding matches the group's centre and whose fine texture does not."""
    centre = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
    x = np.array([1, 0, 0, 0, 0, 1, 0, 0], dtype=np.float32)
    return x / np.linalg.norm(x), centre / np.linalg.norm(centre)


def test_outlier_reason_names_the_group_and_the_descriptors_that_set_it_apart():
    library = _library()
    group = library[:20]
    x, centre = _vectors()
    fast_loud = {"tempo": 172.0, "loudness": -6.0, "brightness": 1500.0, "percussive": 0.3}
    text = explain_outlier(x, centre, PARTS, BASELINE, fast_loud, group, library, "Calm piano")
    assert text.startswith("faster (172 vs ") and "louder (-6 vs " in text, text  # what sets it apart first
    assert " than the rest of 'Calm piano', its nearest group; " in text, text
    assert not any(w in text for w in ("brighter", "darker", "tonal", "percussive", "slower", "quieter")), text
    assert text.endswith("; most different in its usual fine texture above about 2 kHz"), text

    slow_quiet = {"tempo": 55.0, "loudness": -33.0, "brightness": 1480.0, "percussive": 0.31}
    text = explain_outlier(x, centre, PARTS, BASELINE, slow_quiet, group, library, "Calm piano")
    assert "slower (55 vs " in text and "quieter (-33 vs " in text and "faster" not in text, text


def test_outlier_reason_without_a_standout_descriptor_names_the_part_of_the_sound():
    library = _library()
    x, centre = _vectors()
    usual = dict(library[0])
    text = explain_outlier(x, centre, PARTS, BASELINE, usual, library[:20], library, "Group 3")
    want = "most different from the rest of 'Group 3', its nearest group, in its usual fine texture above about 2 kHz"
    assert text == want
    bright = {**usual, "brightness": 4000.0, "percussive": 0.9}
    text = explain_outlier(x, centre, [], BASELINE[:0], bright, library[:20], library, "Group 3")
    assert text.startswith("brighter (4000 vs ") and text.endswith(" than the rest of 'Group 3', its nearest group")
    assert "more percussive (90% vs " in text, text
    assert explain_outlier(x, centre, [], BASELINE[:0], {}, library[:20], library, "Group 3") == ""


def test_pair_explanation_as_one_line_and_one_fact_a_line():
    xa = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
    xb = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
    da = {"tempo": 120.0, "key": "A", "mode": "minor", "loudness": -14.0}
    db = {"tempo": 60.5, "key": "C", "mode": "major", "loudness": -30.0}
    ex = explain_pair(xa, xb, PARTS, BASELINE, da, db)
    assert ex.shared == [
        "same tempo (120 / 60 BPM)",
        "relative keys (A minor / C major)",
        "similar timbre (the textures they are made of, at every scale and band)",
        "sound most alike: overall sound (the network's embedding); its usual fine texture above about 2 kHz",
    ]
    assert ex.different == ["loudness (-14 / -30 LUFS)"]
    assert ex.text == "shared: " + "; ".join(ex.shared) + " | different: loudness (-14 / -30 LUFS)"
    assert ex.multiline.splitlines() == [
        "Shared:",
        *(f"  • {s}" for s in ex.shared),
        "Different:",
        f"  • {ex.different[0]}",
    ]
    assert Explanation().multiline == Explanation().text == "nothing stands out"
