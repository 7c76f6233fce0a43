"""English phones with timings from pocketsphinx: forced alignment to a transcript, or phone recognition.

Both paths take mono float32 samples at any rate (resampled here to the 16 kHz the bundled en-us model
needs) and return `PhoneSegment`s: ARPAbet phones without stress marks (``"AA"``, ``"M"``, ...), plus
``"SIL"`` for silence and pocketsphinx's fillers (``"+NSN+"``, ``"+SPN+"``) for noise, covering the audio
in time order.

Measured on the 7.1 s librivox fixture (CPU time, one core, each call building its own 0.12-0.18 s
decoder): alignment 0.43 s, recognition 0.61 s; long audio costs ~0.08 s per second. Alignment
reproduces the fixture's reference phone boundaries (median error 0 ms, also from 8 and 48 kHz input);
recognition finds them within a median of 10 ms, but only ~70 % of its frames carry the right viseme,
which is why the audio driver trusts recognised phones less than aligned ones.

Pitfall: calling `Decoder.hyp()` after a `set_alignment()` pass crashes the interpreter; only
`get_alignment()` is read after one.
"""

from __future__ import annotations

import logging
import re
from math import gcd
from typing import NamedTuple

import numpy as np
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

PS_SAMPLE_RATE = 16000  # what the bundled en-us acoustic model was trained on
PS_FRAME_RATE = 100  # pocketsphinx analysis frames per second (10 ms hop)
SILENCE_PEAK = 1e-4  # |sample| below this everywhere (-80 dBFS): nothing to recognise
MIN_DURATION = 0.1  # seconds; pocketsphinx finds nothing useful in less
ALIGN_CHUNK_S = 30.0  # longer audio is aligned phone-by-phone in chunks of at most this (memory)
ALLPHONE_LW = 2.0  # phone-LM weight of the phone loop (default 6.5; 2.0 matched the fixture's visemes best)


class PhoneSegment(NamedTuple):
    """One phone: ARPAbet name (no stress digit) or "SIL"/filler, and its span in seconds [start, end)."""

    phone: str  # "AA", "M", "SIL", "+NSN+", ...
    start: float  # seconds from the start of the audio
    end: float  # seconds, > start


class PhoneAlignmentError(RuntimeError):
    """Forced alignment failed (pocketsphinx found no path through the transcript)."""


def to_pocketsphinx_pcm(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float32 samples [N] in [-1, 1] at `sample_rate` Hz -> 16 kHz signed 16-bit little-endian PCM."""
    samples = check_samples(samples, sample_rate)
    if sample_rate != PS_SAMPLE_RATE:
        g = gcd(int(sample_rate), PS_SAMPLE_RATE)
        samples = resample_poly(samples, PS_SAMPLE_RATE // g, int(sample_rate) // g)
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def check_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate mono audio; returns it as float64 [N]. Raises ValueError naming the offending value."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"samples must be mono [N], got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"samples must be float in [-1, 1], got dtype {samples.dtype}")
    if not 4000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be within 4000..192000 Hz, got {sample_rate}")
    if samples.size and not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinite values")
    return samples.astype(np.float64, copy=False)


def align_phones(samples: np.ndarray, sample_rate: int, transcript: str) -> list[PhoneSegment]:
    """Force-align an English `transcript` to the audio and return its phones with timings.

    samples: float32 [N] mono in [-1, 1]. Words missing from the CMU dictionary get a letter-to-sound
    guess; numbers are spelled out. Raises PhoneAlignmentError when no alignment is found (e.g. the
    transcript does not match the audio), ValueError for a transcript with no words.
    """
    words = normalize_transcript(transcript)
    if not words:
        raise ValueError(f"transcript has no words to align: {transcript!r}")
    samples = check_samples(samples, sample_rate)
    if _is_silent(samples, sample_rate):
        raise PhoneAlignmentError("audio is silent or too short to align a transcript to")
    pcm = to_pocketsphinx_pcm(samples, sample_rate)
    if len(pcm) // 2 <= ALIGN_CHUNK_S * PS_SAMPLE_RATE:
        return _align_span(pcm, words, 0.0)
    # Long audio: the phone-level pass needs memory ~ frames x words (measured: 730 MB at 150 s), so
    # align words over the whole clip first (linear memory), then phones chunk by chunk.
    phones: list[PhoneSegment] = []
    for start, end, chunk_words in _word_chunks(pcm, words):
        chunk = pcm[2 * round(start * PS_SAMPLE_RATE): 2 * round(end * PS_SAMPLE_RATE)]
        phones.extend(_align_span(chunk, chunk_words, start) if chunk_words else [PhoneSegment("SIL", start, end)])
    return phones


def _align_span(pcm: bytes, words: list[str], offset: float) -> list[PhoneSegment]:
    """Phone-level forced alignment of `words` to 16 kHz PCM; times shifted by `offset` seconds."""
    decoder = _decoder("align")
    _add_missing_words(decoder, words)
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
        alignment = decoder.get_alignment()  # never hyp() after set_alignment(): it crashes
        phones = [] if alignment is None else [
            PhoneSegment(_strip_stress(p.name), offset + p.start / PS_FRAME_RATE,
                         offset + (p.start + p.duration) / PS_FRAME_RATE)
            for p in alignment.phones()]
    except RuntimeError as exc:
        raise PhoneAlignmentError(f"pocketsphinx could not align the transcript ({exc})") from None
    if not phones:
        raise PhoneAlignmentError(f"no alignment found for the words {' '.join(words)[:60]!r}...")
    return phones


def _word_chunks(pcm: bytes, words: list[str]) -> list[tuple[float, float, list[str]]]:
    """Split a long alignment into (start_s, end_s, words) spans of at most ~ALIGN_CHUNK_S seconds.

    A word-level alignment of the whole clip places the cuts, preferably inside pauses.
    """
    decoder = _decoder("align")
    _add_missing_words(decoder, words)
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        timed = [(re.sub(r"\(\d+\)$", "", s.word), s.start_frame / PS_FRAME_RATE, (s.end_frame + 1) / PS_FRAME_RATE)
                 for s in decoder.seg()]
    except RuntimeError as exc:
        raise PhoneAlignmentError(f"pocketsphinx could not align the transcript ({exc})") from None
    spoken = [(w, s, e) for w, s, e in timed if not w.startswith(("<", "[", "+"))]
    if len(spoken) != len(words):
        raise PhoneAlignmentError(f"word alignment placed {len(spoken)} of {len(words)} words")
    total = len(pcm) / 2 / PS_SAMPLE_RATE
    chunks: list[tuple[float, float, list[str]]] = []
    start, current = 0.0, []
    for i, (word, _, end) in enumerate(spoken):
        current.append(word)
        following = spoken[i + 1][1] if i + 1 < len(spoken) else total
        long_enough = end - start >= 0.6 * ALIGN_CHUNK_S and following - end >= 0.15  # a pause to cut in
        if i + 1 < len(spoken) and (long_enough or following - start >= ALIGN_CHUNK_S):
            cut = (end + following) / 2
            chunks.append((start, cut, current))
            start, current = cut, []
    chunks.append((start, total, current))
    return chunks


def _add_missing_words(decoder, words: list[str]) -> None:
    for word in dict.fromkeys(words):
        if decoder.lookup_word(word) is None:
            pron = guess_pronunciation(word)
            logger.info("word %r is not in the dictionary; guessing %s", word, pron)
            decoder.add_word(word, pron, True)


def recognize_phones(samples: np.ndarray, sample_rate: int) -> list[PhoneSegment]:
    """Recognise English phones (phone loop with the en-us phone trigram) and return them with timings.

    samples: float32 [N] mono in [-1, 1]. Silent or shorter-than-100-ms audio gives []. The phone
    identities are often wrong even on clean English (and meaningless on other languages); the
    boundaries and the speech/silence split are the reliable part.
    """
    samples = check_samples(samples, sample_rate)
    if _is_silent(samples, sample_rate):
        return []
    pcm = to_pocketsphinx_pcm(samples, sample_rate)
    decoder = _decoder("allphone")
    try:
        _decode(decoder, pcm)
        segments = [PhoneSegment(_strip_stress(s.word), s.start_frame / PS_FRAME_RATE,
                                 (s.end_frame + 1) / PS_FRAME_RATE) for s in decoder.seg()]
    except RuntimeError as exc:
        logger.warning("phone recognition failed (%s); continuing without phones", exc)
        return []
    return [s for s in segments if s.end > s.start]


def _is_silent(samples: np.ndarray, sample_rate: int) -> bool:
    return samples.size < MIN_DURATION * sample_rate or float(np.max(np.abs(samples))) < SILENCE_PEAK


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _decoder(kind: str):
    """A new decoder ("align": dictionary, no LM; "allphone": phone loop); 0.12-0.18 s to build.

    Never reused: a decoder carries state from one utterance to the next (measured: the same audio
    decoded twice by one decoder, even with its cepstral mean reset, gave different phones the second
    time), and a fresh one costs no more than `Decoder.reinit()`. Fresh decoders also need no lock.
    """
    import pocketsphinx

    if kind == "align":
        config = pocketsphinx.Config(lm=None, loglevel="FATAL")
    elif kind == "allphone":
        config = pocketsphinx.Config(lm=None, allphone=pocketsphinx.get_model_path("en-us/en-us-phone.lm.bin"),
                                     lw=ALLPHONE_LW, loglevel="FATAL")
    else:
        raise ValueError(f"unknown decoder kind {kind!r}")
    return pocketsphinx.Decoder(config)


def _strip_stress(phone: str) -> str:
    return phone.rstrip("012") if phone[:1].isalpha() else phone


# --- transcript normalisation -------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """Spell a non-negative integer below 10**12 in English words: 1905 -> one thousand nine hundred five."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            return number_words(n // size) + [name] + (number_words(n % size) if n % size else [])
    raise AssertionError("unreachable")  # pragma: no cover


def normalize_transcript(text: str) -> list[str]:
    """Lower-case words of a transcript: punctuation dropped, digits spelled out, apostrophes kept."""
    text = text.lower().replace("\u2019", "'").replace("&", " and ")
    words: list[str] = []
    for token in re.findall(r"[a-z]+(?:'[a-z]+)*|\d+", text):
        if token.isdigit():
            words.extend(number_words(int(token)) if len(token) <= 12 else [_ONES[int(d)] for d in token])
        else:
            words.append(token)
    return words


# Letter-to-sound rules for words missing from the dictionary: longest match first. Crude, but an
# alignment only needs a plausible number and kind of phones to place the word boundaries well.
_LTS = {
    "tion": "SH AH N", "sion": "ZH AH N", "ough": "AO", "augh": "AO", "igh": "AY", "tch": "CH", "sch": "S K",
    "th": "TH", "sh": "SH", "ch": "CH", "ph": "F", "wh": "W", "ck": "K", "ng": "NG", "qu": "K W", "gh": "G",
    "kn": "N", "wr": "R", "ee": "IY", "ea": "IY", "oo": "UW", "ou": "AW", "ow": "OW", "oa": "OW", "ai": "EY",
    "ay": "EY", "ei": "EY", "ey": "EY", "oi": "OY", "oy": "OY", "au": "AO", "aw": "AO", "ie": "IY", "ue": "UW",
    "ew": "UW", "er": "ER", "ir": "ER", "ur": "ER", "ar": "AA R", "or": "AO R",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH", "j": "JH",
    "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T",
    "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z", "'": "",
}
_LTS_KEYS = sorted(_LTS, key=len, reverse=True)


def guess_pronunciation(word: str) -> str:
    """A rough ARPAbet pronunciation for an out-of-dictionary word ("zorblat" -> "Z AO R B L AE T")."""
    phones: list[str] = []
    i = 0
    core = word[:-1] if len(word) > 3 and word.endswith("e") else word  # silent final e
    while i < len(core):
        key = next((k for k in _LTS_KEYS if core.startswith(k, i)), None)
        if key is None:
            i += 1
            continue
        if key == "y" and i > 0:
            key_phones = "IY"  # word-internal/final y is a vowel
        else:
            key_phones = _LTS[key]
        phones.extend(key_phones.split())
        i += len(key)
    deduped = [p for j, p in enumerate(phones) if j == 0 or p != phones[j - 1]]
    return " ".join(deduped) or "AH"
