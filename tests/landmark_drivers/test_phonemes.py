"""pocketsphinx phones: forced alignment and recognition against the librivox fixture's reference timings."""

from __future__ import annotations

import json
from math import gcd

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from landmark_drivers.audio.phonemes import (
    PhoneAlignmentError,
    PhoneSegment,
    align_phones,
    guess_pronunciation,
    normalize_transcript,
    recognize_phones,
    to_pocketsphinx_pcm,
)

ARPABET = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z "
              "ZH".split())


@pytest.fixture(scope="module")
def librivox(fixtures):
    sr, pcm = wavfile.read(fixtures / "speech_librivox_0870.wav")
    reference = json.loads((fixtures / "speech_librivox_0870.phone.json").read_text())
    phones = [PhoneSegment(p["t"], p["b"], p["b"] + p["d"]) for w in reference["w"] for p in w["w"]]
    return pcm.astype(np.float32) / 32768.0, sr, (fixtures / "speech_librivox_0870.txt").read_text(), phones


def _resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    g = gcd(sr, target)
    return resample_poly(x, target // g, sr // g).astype(np.float32)


def _boundary_errors(found: list[PhoneSegment], reference: list[PhoneSegment]) -> np.ndarray:
    """Seconds from each reference phone boundary to the nearest found boundary."""
    ref = np.array([p.start for p in reference[1:]])
    got = np.array([p.start for p in found[1:]])
    return np.abs(ref[:, None] - got[None, :]).min(1)


def _check_segments(phones: list[PhoneSegment], duration: float) -> None:
    starts = np.array([p.start for p in phones])
    assert all(p.end > p.start for p in phones)
    assert np.all(np.diff(starts) > 0), "phones must be in time order"
    assert phones[-1].end <= duration + 0.02
    assert {p.phone for p in phones} <= ARPABET | {"SIL", "+NSN+", "+SPN+"}


def test_alignment_reproduces_reference_phones_and_boundaries(librivox):
    x, sr, text, reference = librivox
    phones = align_phones(x, sr, text)
    _check_segments(phones, len(x) / sr)
    errors = _boundary_errors(phones, reference)
    assert np.median(errors) < 0.05 and np.percentile(errors, 90) < 0.08, errors
    speech = [p.phone for p in phones if p.phone != "SIL"]
    assert speech == [p.phone for p in reference if p.phone != "SIL"]


@pytest.mark.parametrize("rate", [8000, 48000])
def test_alignment_works_at_other_sample_rates(librivox, rate):
    x, sr, text, reference = librivox
    phones = align_phones(_resample(x, sr, rate), rate, text)
    assert np.median(_boundary_errors(phones, reference)) < 0.05


def test_long_audio_is_aligned_in_chunks(librivox, monkeypatch):
    """Above ALIGN_CHUNK_S the words are aligned over the whole clip, then phones chunk by chunk (memory)."""
    import landmark_drivers.audio.phonemes as phonemes

    x, sr, text, reference = librivox
    monkeypatch.setattr(phonemes, "ALIGN_CHUNK_S", 3.0)  # the 7.1 s clip becomes 2-3 chunks
    phones = align_phones(x, sr, text)
    _check_segments(phones, len(x) / sr)
    errors = _boundary_errors(phones, reference)
    assert np.median(errors) < 0.05 and np.percentile(errors, 90) < 0.08
    assert sum(p.phone in ("P", "B", "M") for p in phones) == sum(p.phone in ("P", "B", "M") for p in reference)


def test_recognition_finds_the_reference_boundaries(librivox):
    x, sr, _, reference = librivox
    phones = recognize_phones(x, sr)
    _check_segments(phones, len(x) / sr)
    assert np.median(_boundary_errors(phones, reference)) < 0.05
    assert 0.7 < len(phones) / len(reference) < 1.3
    assert phones[0].phone == "SIL" and phones[0].end >= 0.15  # the clip opens with 0.2 s of silence


def test_silent_or_tiny_audio_gives_no_phones():
    assert recognize_phones(np.zeros(16000, np.float32), 16000) == []
    assert recognize_phones(np.zeros(0, np.float32), 16000) == []
    assert recognize_phones(np.random.default_rng(0).uniform(-0.5, 0.5, 400).astype(np.float32), 16000) == []
    with pytest.raises(PhoneAlignmentError):
        align_phones(np.zeros(16000, np.float32), 16000, "hello world")


def test_out_of_dictionary_words_still_align(librivox):
    x, sr, text, reference = librivox
    phones = align_phones(x, sr, text.replace("dashwood", "dashwoodle"))
    assert np.median(_boundary_errors(phones, reference)) < 0.05


def test_transcript_normalisation_and_guessed_pronunciations():
    assert normalize_transcript("Hello, World!  It's 42 -- OK?") == ["hello", "world", "it's", "forty", "two", "ok"]
    assert normalize_transcript("1905") == ["one", "thousand", "nine", "hundred", "five"]
    assert normalize_transcript("...") == []
    for word in ("zorblat", "xyzzy", "thoughtful", "q"):
        phones = guess_pronunciation(word).split()
        assert phones and set(phones) <= ARPABET, (word, phones)
    assert guess_pronunciation("shim").split() == ["SH", "IH", "M"]
    with pytest.raises(ValueError, match="no words"):
        align_phones(np.zeros(16000, np.float32), 16000, " ?! ")


def test_pcm_conversion_and_input_checks():
    pcm = to_pocketsphinx_pcm(np.full(8000, 0.5, np.float32), 8000)
    values = np.frombuffer(pcm, "<i2")
    assert values.size == 16000 and abs(int(np.median(values)) - 16383) < 50
    with pytest.raises(ValueError, match="mono"):
        recognize_phones(np.zeros((2, 100), np.float32), 16000)
    with pytest.raises(ValueError, match="float"):
        recognize_phones(np.zeros(100, np.int16), 16000)
    with pytest.raises(ValueError, match="NaN"):
        recognize_phones(np.full(100, np.nan, np.float32), 16000)
    with pytest.raises(ValueError, match="1000"):
        recognize_phones(np.zeros(100, np.float32), 1000)
